//! A silence's matchers: `initiator.app="Bulk Onboarding"`, `rule!=admin-role`,
//! `account=~".*@contoso\.com"`, `ip=10.0.0.0/8`, several joined by commas, all of which must
//! hold. `=` compares without case and takes `*` and `?` as wildcards; `=~` is a regular
//! expression that must match the whole value (without case); `!=` and `!~` are their
//! negations. `ip=` takes an address or a CIDR range. A field with several values (an
//! account's UPN and name, an app's name and id) matches `=` when any value does, and `!=`
//! when none does. A value missing from the notice matches only `!=` and `!~`.

use std::fmt;
use std::net::IpAddr;

use regex::Regex;

use super::Facets;
use crate::values::Cidr;

/// What a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Rule,
    Activity,
    Tenant,
    Account,
    Recipient,
    /// The initiator, user or app.
    Initiator,
    InitiatorUser,
    InitiatorApp,
    Ip,
}

impl Field {
    const ALL: [(&'static str, Field); 9] = [
        ("rule", Field::Rule),
        ("activity", Field::Activity),
        ("tenant", Field::Tenant),
        ("account", Field::Account),
        ("recipient", Field::Recipient),
        ("initiator", Field::Initiator),
        ("initiator.user", Field::InitiatorUser),
        ("initiator.app", Field::InitiatorApp),
        ("ip", Field::Ip),
    ];

    fn name(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }

    fn values(self, facets: &Facets) -> Vec<&str> {
        fn one(v: &str) -> Vec<&str> {
            vec![v]
        }
        match self {
            Field::Rule => one(&facets.rule),
            Field::Activity => one(&facets.activity),
            Field::Tenant => one(&facets.tenant),
            Field::Account => facets.account.iter().map(String::as_str).collect(),
            Field::Recipient => one(&facets.recipient),
            Field::Initiator => facets
                .initiator_user
                .iter()
                .chain(&facets.initiator_app)
                .map(String::as_str)
                .collect(),
            Field::InitiatorUser => facets.initiator_user.iter().map(String::as_str).collect(),
            Field::InitiatorApp => facets.initiator_app.iter().map(String::as_str).collect(),
            Field::Ip => facets.ip.iter().map(String::as_str).collect(),
        }
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect()
    }
}

#[derive(Debug, Clone)]
enum Test {
    Equals(Regex),
    Matches(Regex),
    Within(Cidr),
}

/// One `field op value`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub field: Field,
    negated: bool,
    test: Test,
    /// As written, for listings.
    text: String,
}

impl Matcher {
    fn holds(&self, facets: &Facets) -> bool {
        let values = self.field.values(facets);
        let any = values.iter().any(|v| match &self.test {
            Test::Equals(r) | Test::Matches(r) => r.is_match(v),
            Test::Within(cidr) => v.parse::<IpAddr>().is_ok_and(|ip| cidr.contains(ip)),
        });
        any != self.negated
    }

    /// Whether this matcher can hold for a notice of `rule`: always, unless it compares the
    /// rule.
    fn may_hold_for_rule(&self, rule: &str) -> bool {
        if self.field != Field::Rule {
            return true;
        }
        self.holds(&Facets {
            rule: rule.to_owned(),
            ..Facets::default()
        })
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A silence's matchers, all of which must hold.
#[derive(Debug, Clone, Default)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// Parses every `--match` (each may hold several, joined by commas). Errors name the
    /// matcher and what is wrong with it.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Matchers, String> {
        let mut all = Vec::new();
        for spec in specs {
            let mut rest = spec.as_ref().trim();
            while !rest.is_empty() {
                let (matcher, after) = parse_one(rest)?;
                all.push(matcher);
                rest = after.trim_start();
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r.trim_start();
                } else if !rest.is_empty() {
                    return Err(format!(
                        "{rest:?}: matchers are joined by commas (rule=x, account=y)"
                    ));
                }
            }
        }
        if all.is_empty() {
            return Err("a silence needs at least one matcher (e.g. initiator.app=\"Bulk Onboarding\"): one that matches everything would mute Herald".to_owned());
        }
        Ok(Matchers(all))
    }

    pub fn holds(&self, facets: &Facets) -> bool {
        self.0.iter().all(|m| m.holds(facets))
    }

    /// Whether a notice of `rule` may be silenced by these matchers (as far as the rule's
    /// name tells).
    pub fn may_hold_for_rule(&self, rule: &str) -> bool {
        self.0.iter().all(|m| m.may_hold_for_rule(rule))
    }

    /// The matchers as one line, as `parse` reads them back.
    pub fn text(&self) -> String {
        self.0
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn parse_one(text: &str) -> Result<(Matcher, &str), String> {
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    let field = Field::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            let known: Vec<&str> = Field::ALL.iter().map(|(n, _)| *n).collect();
            format!(
                "{:?}: unknown field {name:?} (one of {})",
                text,
                known.join(", ")
            )
        })?;
    let rest = text[name_end..].trim_start();
    let (op, rest) = ["!=", "=~", "!~", "="]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|r| (*op, r)))
        .ok_or_else(|| format!("{text:?}: after {name} comes =, !=, =~ or !~"))?;
    let (value, after) = parse_value(rest.trim_start()).map_err(|m| format!("{text:?}: {m}"))?;
    let written = format!("{}{}{}", field.name(), op, quote(&value));
    let negated = op.starts_with('!');
    let test = match (field, op) {
        (Field::Ip, "=" | "!=") => Test::Within(Cidr::parse(&value)?),
        (_, "=" | "!=") => Test::Equals(glob(&value)?),
        _ => Test::Matches(
            regex::RegexBuilder::new(&format!("^(?:{value})$"))
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("{written}: not a regular expression: {e}"))?,
        ),
    };
    Ok((
        Matcher {
            field,
            negated,
            test,
            text: written,
        },
        after,
    ))
}

/// A quoted value (`"…"` with `\"` and `\\`) or a bare one (up to a comma or a space).
fn parse_value(text: &str) -> Result<(String, &str), String> {
    if let Some(inner) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((value, &inner[i + 1..])),
                '\\' => match chars.next() {
                    Some((_, c)) => value.push(c),
                    None => break,
                },
                c => value.push(c),
            }
        }
        return Err("the quoted value has no closing \"".to_owned());
    }
    let end = text
        .find(|c: char| c == ',' || c.is_whitespace())
        .unwrap_or(text.len());
    if end == 0 {
        return Err("no value (quote an empty one: \"\")".to_owned());
    }
    Ok((text[..end].to_owned(), &text[end..]))
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `=`'s comparison: the whole value without case, `*` any run, `?` one character.
fn glob(value: &str) -> Result<Regex, String> {
    let mut pattern = String::from("^");
    for c in value.chars() {
        match c {
            '*' => pattern.push_str(".*"),
            '?' => pattern.push('.'),
            c => pattern.push_str(&regex::escape(&c.to_string())),
        }
    }
    pattern.push('$');
    regex::RegexBuilder::new(&pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("{value:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facets() -> Facets {
        Facets {
            rule: "tap-issued".into(),
            activity: "Admin registered security info".into(),
            tenant: "contoso".into(),
            account: vec!["adele.vance@contoso.com".into(), "Adele Vance".into()],
            recipient: "adele.vance@contoso.com".into(),
            initiator_user: None,
            initiator_app: vec![
                "Bulk Onboarding".into(),
                "1b9c1a6e-0000-4000-8000-000000000001".into(),
            ],
            ip: Some("10.1.2.3".into()),
        }
    }

    fn holds(spec: &str) -> bool {
        Matchers::parse(&[spec]).unwrap().holds(&facets())
    }

    #[test]
    fn each_operator_on_each_kind_of_field() {
        assert!(holds(r#"initiator.app="Bulk Onboarding""#));
        assert!(holds(r#"initiator.app="bulk onboarding""#));
        assert!(holds("initiator=1b9c1a6e-0000-4000-8000-000000000001"));
        assert!(!holds("initiator.user=adele.vance@contoso.com"));
        assert!(holds("initiator.user!=adele.vance@contoso.com"));
        assert!(holds("account=*@contoso.com"));
        assert!(holds("account=adele.v?nce@contoso.com"));
        assert!(!holds("account=*@fabrikam.com"));
        assert!(holds("account!=*@fabrikam.com"));
        assert!(holds(r#"account=~".*@contoso\.com""#));
        assert!(!holds(r#"account!~".*@contoso\.com""#));
        assert!(holds("ip=10.0.0.0/8"));
        assert!(!holds("ip=192.168.0.0/16"));
        assert!(holds("ip!=192.168.0.0/16"));
        assert!(holds("rule=tap-issued, tenant=contoso"));
        assert!(!holds("rule=tap-issued, tenant=fabrikam"));
        // A regular expression must match the whole value.
        assert!(!holds("activity=~registered"));
        assert!(holds("activity=~.*registered.*"));
    }

    #[test]
    fn a_missing_value_matches_only_a_negation() {
        let mut f = facets();
        f.ip = None;
        let m = Matchers::parse(&["ip=10.0.0.0/8"]).unwrap();
        assert!(!m.holds(&f));
        let m = Matchers::parse(&["ip!=10.0.0.0/8"]).unwrap();
        assert!(m.holds(&f));
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        let err = |s: &str| Matchers::parse(&[s]).unwrap_err();
        assert!(err("who=x").contains("unknown field \"who\""));
        assert!(err("rule x").contains("comes ="));
        assert!(err("rule=").contains("no value"));
        assert!(err(r#"rule="x"#).contains("closing"));
        assert!(err("account=~(").contains("not a regular expression"));
        assert!(err("ip=10.0.0.0/40").contains("CIDR"));
        assert!(err("rule=a rule=b").contains("commas"));
        assert!(
            Matchers::parse::<&str>(&[])
                .unwrap_err()
                .contains("at least one")
        );
    }

    #[test]
    fn matchers_read_back_as_written() {
        let m = Matchers::parse(&[r#"initiator.app = "Bulk \"O\"", ip!=10.0.0.0/8"#]).unwrap();
        assert_eq!(m.text(), r#"initiator.app="Bulk \"O\"", ip!="10.0.0.0/8""#);
        let again = Matchers::parse(&[m.text()]).unwrap();
        assert_eq!(again.text(), m.text());
    }

    #[test]
    fn the_rules_a_silence_may_hold_for() {
        let m = Matchers::parse(&["rule=tap-*, account=*@contoso.com"]).unwrap();
        assert!(m.may_hold_for_rule("tap-issued"));
        assert!(!m.may_hold_for_rule("admin-role"));
        let m = Matchers::parse(&["rule!=admin-role"]).unwrap();
        assert!(!m.may_hold_for_rule("admin-role"));
        assert!(m.may_hold_for_rule("tap-issued"));
    }
}
