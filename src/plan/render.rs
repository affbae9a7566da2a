//! Templates: the minijinja environment, the built-in `security-notice`, channels' JSON
//! templates, and subject lines.
//!
//! Every audit field is hostile (ARCHITECTURE.md §2.5). HTML templates are registered under names ending
//! in `.html`, so minijinja escapes everything they print; nothing from an event is ever
//! compiled as a template; and a subject is stripped of line breaks and other control
//! characters after rendering, so no event can add a header.

use std::path::{Path, PathBuf};

use minijinja::Environment;

/// A template shipped in the binary.
struct BuiltIn {
    name: &'static str,
    html_name: &'static str,
    text_name: &'static str,
    html: &'static str,
    text: &'static str,
}

const BUILT_IN: &[BuiltIn] = &[BuiltIn {
    name: "security-notice",
    html_name: "security-notice.html",
    text_name: "security-notice.txt",
    html: include_str!("../../templates/security-notice.html"),
    text: include_str!("../../templates/security-notice.txt"),
}];

/// A subject for rules that do not write one: the notice's headline, in plain words for its
/// reader ([`super::wording`]).
pub(crate) const DEFAULT_SUBJECT: &str = "{{ summary }}";

/// Longest subject kept, in characters; mail clients cut far earlier.
const SUBJECT_MAX: usize = 200;

/// Where a rule's template lives once resolved.
#[derive(Debug, Clone)]
pub(crate) struct TemplateNames {
    pub html: String,
    pub text: String,
}

pub(crate) fn environment(timezone: &str) -> Environment<'static> {
    let mut env = Environment::new();
    minijinja_contrib::add_to_environment(&mut env);
    env.add_global("TIMEZONE", timezone.to_owned());
    env.add_global("DATETIME_FORMAT", "%A %-d %B %Y, %H:%M %Z".to_owned());
    // In text and HTML a value that is missing prints as nothing, never as `none` or
    // `undefined`: a subject such as "Role assigned: {{ target.upn }}" for a target without
    // one must not say "none". JSON templates keep `null`, a literal like every other value.
    env.set_formatter(|out, state, value| {
        let json = matches!(state.auto_escape(), minijinja::AutoEscape::Json);
        if !json && (value.is_none() || value.is_undefined()) {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    // Bounds a runaway loop in an operator's template; generous for any real notice.
    env.set_fuel(Some(2_000_000));
    // For Slack's `text` and `mrkdwn` fields, where `<…>` makes links and mentions.
    env.add_filter("slack_escape", |text: String| {
        super::chat::slack_escape(&text)
    });
    for t in BUILT_IN {
        env.add_template(t.html_name, t.html)
            .expect("built-in HTML template compiles");
        env.add_template(t.text_name, t.text)
            .expect("built-in text template compiles");
    }
    env
}

/// Resolves a rule's `template`: a built-in name, or a path to `NAME.html` (with `NAME.txt`
/// beside it), relative to the configuration's directory. Loads files into `env`.
pub(crate) fn load(
    env: &mut Environment<'static>,
    spec: &str,
    base: &Path,
) -> Result<TemplateNames, String> {
    if let Some(t) = BUILT_IN.iter().find(|t| t.name == spec) {
        return Ok(TemplateNames {
            html: t.html_name.to_owned(),
            text: t.text_name.to_owned(),
        });
    }
    let html_path = base.join(spec);
    let stem = match spec.strip_suffix(".html") {
        Some(stem) => stem,
        None => {
            let names: Vec<&str> = BUILT_IN.iter().map(|t| t.name).collect();
            return Err(format!(
                "{spec:?} is neither a built-in template ({}) nor a path to a NAME.html file",
                names.join(", ")
            ));
        }
    };
    let text_path: PathBuf = base.join(format!("{stem}.txt"));
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let (html, text) = (read(&html_path)?, read(&text_path)?);
    let names = TemplateNames {
        html: format!("{}", html_path.display()),
        text: format!("{}", text_path.display()),
    };
    env.add_template_owned(names.html.clone(), html)
        .map_err(|e| format!("{}: {e}", html_path.display()))?;
    env.add_template_owned(names.text.clone(), text)
        .map_err(|e| format!("{}: {e}", text_path.display()))?;
    Ok(names)
}

/// Loads a channel's JSON template (`webhook`, `teams`, `slack`) from `path`, relative to the
/// configuration's directory, and returns its name. The name ends in `.json`, so minijinja
/// prints every value as a JSON literal (a string quoted and escaped): an audit value cannot
/// close a string or add a key. A template therefore writes `"text": {{ event.activity }}`,
/// not `"text": "{{ event.activity }}"`, and joins text with `~`.
pub(crate) fn load_json(
    env: &mut Environment<'static>,
    channel: &str,
    path: &Path,
    base: &Path,
) -> Result<String, String> {
    let path = base.join(path);
    let source = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // Named for the key that loaded it; the `.json` ending chooses JSON escaping.
    let name = format!("channel.{channel}.template.json");
    env.add_template_owned(name.clone(), source)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(name)
}

/// The JSON a channel template rendered, parsed: output that is not JSON is an error naming
/// where it broke, never sent.
pub(crate) fn parse_json(name: &str, rendered: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(rendered).map_err(|e| {
        format!(
            "template {name} did not render JSON ({e}); values print as JSON literals, \
             so write {{{{ value }}}} without quotes around it"
        )
    })
}

/// Registers a rule's subject template. Its name has no `.html`, so it is rendered as text;
/// [`clean_subject`] then makes it safe for a header.
pub(crate) fn load_subject(
    env: &mut Environment<'static>,
    rule: &str,
    source: Option<&str>,
) -> Result<String, String> {
    let name = format!("subject of rule {rule}");
    env.add_template_owned(name.clone(), source.unwrap_or(DEFAULT_SUBJECT).to_owned())
        .map_err(|e| e.to_string())?;
    Ok(name)
}

/// A subject line from rendered text: control characters (CR, LF, tabs, Unicode line
/// separators…) become spaces, runs of spaces one, and it is cut to a sane length.
pub fn clean_subject(rendered: &str) -> String {
    let mut out = String::with_capacity(rendered.len().min(SUBJECT_MAX * 4));
    let mut count = 0;
    for word in rendered
        .split(|c: char| {
            c.is_control() || c.is_whitespace() || matches!(c, '\u{2028}' | '\u{2029}')
        })
        .filter(|w| !w.is_empty())
    {
        if count > 0 {
            if count + 1 >= SUBJECT_MAX {
                return out;
            }
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= SUBJECT_MAX {
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_loses_line_breaks_and_controls() {
        assert_eq!(
            clean_subject("Reset\r\nBcc: attacker@evil.example\t\u{0}x\u{2028}y"),
            "Reset Bcc: attacker@evil.example x y"
        );
        assert_eq!(clean_subject(&"a".repeat(500)).chars().count(), SUBJECT_MAX);
        for first in [198, 199, 200] {
            let subject = clean_subject(&format!("{} b", "a".repeat(first)));
            assert!(subject.chars().count() <= SUBJECT_MAX, "{first}");
            assert!(!subject.ends_with(' '), "{first}");
        }
    }

    #[test]
    fn built_in_templates_compile() {
        let env = environment("UTC");
        assert!(env.get_template("security-notice.html").is_ok());
        assert!(env.get_template("security-notice.txt").is_ok());
    }
}
