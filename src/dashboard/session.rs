//! Who is signed in to the dashboard (ARCHITECTURE.md §12): operators' tokens, kept in the
//! configuration only as SHA-256 hashes; the session cookie,
//! `v1.{via}.{name}.{role}.{expiry}.{mac}` with an HMAC-SHA256 under the session key (`via`:
//! `t` for a token, `e` for Entra ID); the CSRF token of a session's forms, a second HMAC bound
//! to the cookie, so forms need no server state; and the short-lived cookie that carries an
//! Entra sign-in's state, nonce and PKCE verifier from its start to its callback.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};
use serde::Deserialize;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads every page.
    Viewer,
    /// Also retries, replays and resolves.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// One `[dashboard] tokens` entry: who holds it, their role, and the token's SHA-256 (hex).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    pub sha256: String,
}

impl TokenEntry {
    /// What is wrong with this entry as written, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
        {
            return Some(format!(
                "name {:?} must be 1 to 64 letters, digits, `.`, `_`, `@` or `-`",
                self.name
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some(format!(
                "sha256 of {:?} must be 64 hex digits (`herald token new` prints one)",
                self.name
            ));
        }
        None
    }
}

/// A signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub name: String,
    pub role: Role,
}

/// How a session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A token of `[dashboard] tokens`: honoured while the token is still listed.
    Token,
    /// Entra ID: the role the ID token gave, for the session's lifetime.
    Entra,
}

/// Random bytes as base64url (state, nonce, PKCE verifier).
pub fn random(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness".to_owned())?;
    Ok(B64.encode(bytes))
}

/// The PKCE S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    use sha2::Digest;
    B64.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// What an Entra sign-in carries from its start to its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// A new random token (`hd_` and 43 base64url characters: 256 bits) and its SHA-256, for
/// `herald token new`.
pub fn new_token() -> Result<(String, String), String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness".to_owned())?;
    let token = format!("hd_{}", B64.encode(bytes));
    let hash = hash(&token);
    Ok((token, hash))
}

/// A token's SHA-256, as 64 lower-case hex digits.
pub fn hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tokens, the session key and how long a session lasts.
pub struct Sessions {
    tokens: Vec<TokenEntry>,
    key: Vec<u8>,
    lifetime: i64,
    /// Whether Entra sessions are honoured (`auth = "entra"`): one opened before the
    /// dashboard went back to tokens ends with it.
    entra: bool,
}

impl Sessions {
    /// `key`: at least 32 bytes; `None` makes one at random (sessions then end with the
    /// process, and each instance has its own).
    pub fn new(
        tokens: Vec<TokenEntry>,
        key: Option<&[u8]>,
        lifetime: std::time::Duration,
    ) -> Result<Sessions, String> {
        let key = match key {
            Some(key) if key.len() < 32 => {
                return Err(format!(
                    "session_key is {} bytes; it must be at least 32 (e.g. `openssl rand -base64 48`)",
                    key.len()
                ));
            }
            Some(key) => key.to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut key).map_err(|_| "no randomness".to_owned())?;
                key
            }
        };
        Ok(Sessions {
            tokens,
            key,
            lifetime: lifetime.as_secs().max(60) as i64,
            entra: false,
        })
    }

    /// These sessions, honouring Entra sessions too.
    pub fn with_entra(self) -> Sessions {
        Sessions {
            entra: true,
            ..self
        }
    }

    /// The first 16 hex digits of the SHA-256 of `who`'s token: a token session names its
    /// token, so replacing a leaked token (same name, new hash) ends the sessions it opened.
    fn fingerprint(&self, who: &Who) -> Option<String> {
        self.tokens
            .iter()
            .find(|t| t.name == who.name && t.role == who.role)
            .map(|t| t.sha256.to_ascii_lowercase().chars().take(16).collect())
    }

    pub fn lifetime(&self) -> i64 {
        self.lifetime
    }

    /// Whether any token may sign in.
    pub fn has_tokens(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whose token `token` is, compared by hash in constant time.
    pub fn by_token(&self, token: &str) -> Option<Who> {
        let hashed = hash(token.trim());
        self.tokens
            .iter()
            .find(|t| {
                aws_lc_rs::constant_time::verify_slices_are_equal(
                    t.sha256.to_ascii_lowercase().as_bytes(),
                    hashed.as_bytes(),
                )
                .is_ok()
            })
            .map(|t| Who {
                name: t.name.clone(),
                role: t.role,
            })
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
        }
        mac
    }

    /// A session cookie's value for `who`, valid from `now` (Unix seconds) for the lifetime.
    pub fn issue(&self, who: &Who, via: Via, now: i64) -> String {
        let head = format!(
            "v1.{}.{}.{}.{}",
            match via {
                Via::Token => format!("t-{}", self.fingerprint(who).unwrap_or_default()),
                Via::Entra => "e".to_owned(),
            },
            B64.encode(&who.name),
            who.role.as_str(),
            now + self.lifetime
        );
        let mac = self.mac(&[head.as_bytes()]).finalize().into_bytes();
        format!("{head}.{}", B64.encode(mac))
    }

    /// Who a session cookie's value names, if it is one of ours, unexpired at `now`, and its
    /// holder still has a token of that role.
    pub fn verify(&self, value: &str, now: i64) -> Option<Who> {
        let (head, mac) = value.rsplit_once('.')?;
        let mac = B64.decode(mac).ok()?;
        self.mac(&[head.as_bytes()]).verify_slice(&mac).ok()?;
        let mut parts = head.split('.');
        let (Some("v1"), Some(via), Some(name), Some(role), Some(expires), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if expires.parse::<i64>().ok()? < now {
            return None;
        }
        let name = String::from_utf8(B64.decode(name).ok()?).ok()?;
        let role = Role::parse(role)?;
        let who = Who { name, role };
        match via.split_once('-') {
            // A token removed from the configuration, given another role or replaced ends
            // its sessions.
            Some(("t", fingerprint)) => (!fingerprint.is_empty()
                && self.fingerprint(&who).as_deref() == Some(fingerprint))
            .then_some(who),
            None if via == "e" && self.entra => Some(who),
            _ => None,
        }
    }

    /// The sign-in cookie's value for `pending`, good for ten minutes from `now`.
    pub fn pending(&self, pending: &Pending, now: i64) -> String {
        let head = format!(
            "{}.{}.{}.{}",
            pending.state,
            pending.nonce,
            pending.verifier,
            now + 600
        );
        let mac = self
            .mac(&[b"login.", head.as_bytes()])
            .finalize()
            .into_bytes();
        format!("{head}.{}", B64.encode(mac))
    }

    /// What a sign-in cookie carries, if it is ours and unexpired at `now`.
    pub fn verify_pending(&self, value: &str, now: i64) -> Option<Pending> {
        let (head, mac) = value.rsplit_once('.')?;
        let mac = B64.decode(mac).ok()?;
        self.mac(&[b"login.", head.as_bytes()])
            .verify_slice(&mac)
            .ok()?;
        let mut parts = head.split('.');
        let (Some(state), Some(nonce), Some(verifier), Some(expires), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        (expires.parse::<i64>().ok()? >= now).then(|| Pending {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
        })
    }

    /// The CSRF token of the session whose cookie is `value`.
    pub fn csrf(&self, value: &str) -> String {
        B64.encode(
            self.mac(&[b"csrf.", value.as_bytes()])
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `token` is the CSRF token of the session `value`, in constant time.
    pub fn csrf_ok(&self, value: &str, token: &str) -> bool {
        B64.decode(token).ok().is_some_and(|t| {
            self.mac(&[b"csrf.", value.as_bytes()])
                .verify_slice(&t)
                .is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        let tokens = vec![
            TokenEntry {
                name: "olivia".into(),
                role: Role::Operator,
                sha256: hash("hd_operator"),
            },
            TokenEntry {
                name: "victor".into(),
                role: Role::Viewer,
                sha256: hash("hd_viewer"),
            },
        ];
        Sessions::new(
            tokens,
            Some(&[7u8; 32]),
            std::time::Duration::from_secs(3600),
        )
        .unwrap()
    }

    #[test]
    fn a_token_names_its_holder_and_a_session_lasts_its_lifetime() {
        let s = sessions();
        let olivia = s.by_token("hd_operator").unwrap();
        assert_eq!(
            (olivia.name.as_str(), olivia.role),
            ("olivia", Role::Operator)
        );
        assert!(s.by_token("hd_nope").is_none());
        let cookie = s.issue(&olivia, Via::Token, 1_000);
        assert_eq!(s.verify(&cookie, 1_000 + 3600), Some(olivia.clone()));
        assert_eq!(s.verify(&cookie, 1_000 + 3601), None, "expired");
        // Another role written into the cookie breaks its mac.
        let forged = cookie.replace(".operator.", ".viewer.");
        assert_eq!(s.verify(&forged, 1_000), None);
        // A session under another key is not ours.
        let other = Sessions::new(
            Vec::new(),
            Some(&[8u8; 32]),
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            s.verify(&other.issue(&olivia, Via::Token, 1_000), 1_000),
            None
        );
        // A token session ends when its token is no longer listed; an Entra session does not
        // depend on the list, and cannot be turned into a token session.
        let entra = Who {
            name: "adele@contoso.com".into(),
            role: Role::Operator,
        };
        let signed = s.issue(&entra, Via::Entra, 1_000);
        assert_eq!(
            s.verify(&signed, 1_000),
            None,
            "not without Entra configured"
        );
        let s = s.with_entra();
        assert_eq!(s.verify(&signed, 1_000), Some(entra.clone()));
        assert_eq!(s.verify(&s.issue(&entra, Via::Token, 1_000), 1_000), None);
        assert_eq!(s.verify(&signed.replacen(".e.", ".t-.", 1), 1_000), None);
        // A token replaced under the same name ends the sessions the old one opened.
        let old = s.issue(&olivia, Via::Token, 1_000);
        let mut replaced = sessions();
        replaced.tokens[0].sha256 = hash("hd_new");
        assert_eq!(replaced.verify(&old, 1_000), None);
    }

    #[test]
    fn a_sign_in_cookie_carries_its_state_for_ten_minutes() {
        let s = sessions();
        let pending = Pending {
            state: random(16).unwrap(),
            nonce: random(16).unwrap(),
            verifier: random(32).unwrap(),
        };
        let cookie = s.pending(&pending, 1_000);
        assert_eq!(s.verify_pending(&cookie, 1_600), Some(pending.clone()));
        assert_eq!(s.verify_pending(&cookie, 1_601), None);
        let (head, mac) = cookie.rsplit_once('.').unwrap();
        let forged = format!("x{head}.{mac}");
        assert_eq!(s.verify_pending(&forged, 1_000), None);
        // A session cookie is no sign-in cookie, nor the other way round.
        assert_eq!(s.verify(&cookie, 1_000), None);
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let s = sessions();
        let a = s.issue(&s.by_token("hd_operator").unwrap(), Via::Token, 1_000);
        let b = s.issue(&s.by_token("hd_viewer").unwrap(), Via::Token, 1_000);
        assert!(s.csrf_ok(&a, &s.csrf(&a)));
        assert!(!s.csrf_ok(&a, &s.csrf(&b)));
        assert!(!s.csrf_ok(&a, "nonsense!"));
    }

    #[test]
    fn a_short_session_key_and_a_bad_entry_are_refused() {
        assert!(
            Sessions::new(
                Vec::new(),
                Some(b"short"),
                std::time::Duration::from_secs(60)
            )
            .is_err()
        );
        let entry = TokenEntry {
            name: "a b".into(),
            role: Role::Viewer,
            sha256: "00".into(),
        };
        assert!(entry.problem().unwrap().contains("name"));
        let (token, hash) = new_token().unwrap();
        assert!(token.starts_with("hd_") && token.len() == 46, "{token}");
        assert_eq!(hash.len(), 64);
    }
}
