//! The signed report link of a notice: `{public_url}/r/{token}` (ARCHITECTURE.md §2.9).
//!
//! A token carries no event data: `v1.{key id}.{payload}.{mac}`, where the payload is the
//! notification key (16 bytes) and the expiry (Unix seconds, 8 bytes) in base64url, and the mac
//! is HMAC-SHA256 over `v1.{key id}.{payload}` under the secret of that key id. Several keys
//! verify, the first signs: a key is rotated by adding a new one first and removing the old
//! one once its links have expired. The CSRF token of a link's form is a second HMAC, bound to
//! the token, so it is good for that link alone and needs no server state.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Shortest secret accepted for a link key, in bytes: HMAC-SHA256's own strength.
pub const MIN_SECRET: usize = 32;

/// One key: its id (written into every token it signs) and secret.
#[derive(Clone)]
pub struct LinkKey {
    pub id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKey({}, ***)", self.id)
    }
}

impl LinkKey {
    /// A key, refused when its id is not `[A-Za-z0-9_-]{1,32}` or its secret is shorter than
    /// [`MIN_SECRET`] bytes.
    pub fn new(id: &str, secret: &[u8]) -> Result<LinkKey, String> {
        if id.is_empty()
            || id.len() > 32
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "link key id {id:?} must be 1 to 32 letters, digits, `-` or `_`"
            ));
        }
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "the secret of link key {id:?} is {} bytes; it must be at least {MIN_SECRET} (e.g. `openssl rand -base64 48`)",
                secret.len()
            ));
        }
        Ok(LinkKey {
            id: id.to_owned(),
            secret: secret.to_vec(),
        })
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
        }
        mac
    }
}

/// The keys links are signed and checked with; the first signs.
#[derive(Debug, Clone)]
pub struct LinkKeys(Vec<LinkKey>);

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The notification key, as 32 hex digits.
    pub key: String,
    /// Unix seconds after which the link no longer decides anything.
    pub expires: i64,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not a Herald report link, or it was changed")]
    Invalid,
    #[error("the link was signed with a key that is no longer in use")]
    UnknownKey,
    #[error("the link has expired")]
    Expired(Link),
}

impl LinkKeys {
    /// `keys` in order, the first signing; at least one.
    pub fn new(keys: Vec<LinkKey>) -> Result<LinkKeys, String> {
        if keys.is_empty() {
            return Err("no link key: list at least one in link_keys".to_owned());
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(format!("link key id {:?} is listed twice", k.id));
            }
        }
        Ok(LinkKeys(keys))
    }

    /// A token for the notification `key` (32 hex digits), valid until `expires`.
    pub fn sign(&self, key: &str, expires: i64) -> Option<String> {
        let signer = &self.0[0];
        let mut payload = decode_hex(key)?.to_vec();
        payload.extend_from_slice(&expires.to_be_bytes());
        let head = format!("v1.{}.{}", signer.id, B64.encode(&payload));
        let mac = signer.mac(&[head.as_bytes()]).finalize().into_bytes();
        Some(format!("{head}.{}", B64.encode(mac)))
    }

    /// What `token` says, if one of the keys signed it and it has not expired at `now` (Unix
    /// seconds). The mac is compared in constant time.
    pub fn verify(&self, token: &str, now: i64) -> Result<Link, LinkError> {
        let (head, mac) = token.rsplit_once('.').ok_or(LinkError::Invalid)?;
        let mut parts = head.split('.');
        let (Some("v1"), Some(id), Some(payload), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Invalid);
        };
        let key = self
            .0
            .iter()
            .find(|k| k.id == id)
            .ok_or(LinkError::UnknownKey)?;
        let mac = B64.decode(mac).map_err(|_| LinkError::Invalid)?;
        key.mac(&[head.as_bytes()])
            .verify_slice(&mac)
            .map_err(|_| LinkError::Invalid)?;
        let payload = B64.decode(payload).map_err(|_| LinkError::Invalid)?;
        let (key_bytes, expiry) = payload.split_at_checked(16).ok_or(LinkError::Invalid)?;
        let expires = i64::from_be_bytes(expiry.try_into().map_err(|_| LinkError::Invalid)?);
        let link = Link {
            key: key_bytes.iter().map(|b| format!("{b:02x}")).collect(),
            expires,
        };
        if now > expires {
            return Err(LinkError::Expired(link));
        }
        Ok(link)
    }

    /// The CSRF token of `token`'s form: good for this link only.
    pub fn csrf(&self, token: &str) -> String {
        let mac = self.0[0]
            .mac(&[b"csrf.", token.as_bytes()])
            .finalize()
            .into_bytes();
        B64.encode(mac)
    }

    /// Whether `given` is `token`'s CSRF token under any key (one rotated in since the page was
    /// shown included), compared in constant time.
    pub fn csrf_ok(&self, token: &str, given: &str) -> bool {
        let Ok(given) = B64.decode(given) else {
            return false;
        };
        self.0.iter().any(|k| {
            k.mac(&[b"csrf.", token.as_bytes()])
                .verify_slice(&given)
                .is_ok()
        })
    }
}

fn decode_hex(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "98500a9745d251493aa426d91281bff0";

    fn keys(ids: &[&str]) -> LinkKeys {
        LinkKeys::new(
            ids.iter()
                .map(|id| {
                    LinkKey::new(
                        id,
                        format!("{id}-secret-of-at-least-thirty-two-bytes").as_bytes(),
                    )
                    .unwrap()
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let k = keys(&["k1"]);
        let token = k.sign(KEY, 1_000).unwrap();
        assert!(token.starts_with("v1.k1."), "{token}");
        assert_eq!(
            k.verify(&token, 999),
            Ok(Link {
                key: KEY.to_owned(),
                expires: 1_000
            })
        );
        assert!(matches!(
            k.verify(&token, 1_001),
            Err(LinkError::Expired(_))
        ));
    }

    #[test]
    fn a_changed_or_foreign_token_is_refused() {
        let k = keys(&["k1"]);
        let token = k.sign(KEY, 1_000).unwrap();
        // Any character changed anywhere.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != token {
                assert!(k.verify(&changed, 0).is_err(), "{changed}");
            }
        }
        assert_eq!(k.verify("nonsense", 0), Err(LinkError::Invalid));
        assert_eq!(k.verify("", 0), Err(LinkError::Invalid));
        assert_eq!(k.verify("v1.k1.é.é", 0), Err(LinkError::Invalid));
        // Signed by another deployment's key of the same id.
        let other = LinkKeys::new(vec![LinkKey::new("k1", &[7u8; 40]).unwrap()]).unwrap();
        assert_eq!(
            k.verify(&other.sign(KEY, 1_000).unwrap(), 0),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn rotation_keeps_old_links_until_their_key_is_removed() {
        let old = keys(&["k1"]);
        let token = old.sign(KEY, 1_000).unwrap();
        let rotated = keys(&["k2", "k1"]);
        assert!(rotated.verify(&token, 0).is_ok());
        assert!(rotated.sign(KEY, 1_000).unwrap().starts_with("v1.k2."));
        let removed = keys(&["k2"]);
        assert_eq!(removed.verify(&token, 0), Err(LinkError::UnknownKey));
    }

    #[test]
    fn a_csrf_token_is_good_for_its_own_link_only() {
        let k = keys(&["k1"]);
        let a = k.sign(KEY, 1_000).unwrap();
        let b = k.sign("00000000000000000000000000000001", 1_000).unwrap();
        assert!(k.csrf_ok(&a, &k.csrf(&a)));
        assert!(!k.csrf_ok(&b, &k.csrf(&a)));
        assert!(!k.csrf_ok(&a, "not base64 !"));
    }

    #[test]
    fn weak_keys_are_refused() {
        assert!(LinkKey::new("k1", b"short").is_err());
        assert!(LinkKey::new("k 1", &[0; 40]).is_err());
        assert!(LinkKeys::new(vec![]).is_err());
    }
}
