//! The gallery: every rule of a configuration rendered for every reader (the owner of the
//! account, a group, the initiator) and every result (success, failure), from sample records
//! ([`super::samples`]), so wording can be reviewed side by side (`herald preview --gallery
//! DIR`) and pinned by snapshot tests.
//!
//! A rule is rendered on its first channel that sends mail; the reader replaces the rule's
//! own recipients, and a render the rule would not select (a failure, for a rule with
//! `results = ["success"]`) is still shown, marked as such.

use std::path::Path;

use minijinja::{Environment, context};

use super::{Delivery, Planner, recipients, samples};
use crate::config::Config;

/// One notice of the gallery.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Render {
    pub rule: String,
    pub activity: String,
    /// `owner`, `group` or `initiator`.
    pub reader: &'static str,
    /// `success` or `failure`.
    pub result: &'static str,
    /// Whether the rule selects the sample record at all.
    pub selected: bool,
    pub subject: String,
    pub text: String,
    #[serde(skip)]
    pub html: String,
}

impl Render {
    /// A file name for this render: `rule--result--reader`, in safe characters.
    pub fn name(&self) -> String {
        let rule: String = self
            .rule
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{rule}--{}--{}", self.result, self.reader)
    }
}

const READERS: [&str; 3] = ["owner", "group", "initiator"];
const RESULTS: [&str; 2] = ["success", "failure"];

/// Every render of `config`'s rules; a rule without a mail channel, or whose render fails,
/// yields an error naming it.
pub fn renders(config: &Config, planner: &Planner) -> Vec<Result<Render, String>> {
    let group = config
        .groups
        .iter()
        .find_map(|(name, addresses)| Some((name.clone(), addresses.first()?.clone())))
        .unwrap_or_else(|| {
            (
                "security-team".to_owned(),
                "security@contoso.com".to_owned(),
            )
        });
    let mut out = Vec::new();
    for rule in config.rules.rules() {
        let Some(channel) = rule.channels.iter().find(|c| {
            matches!(
                planner.deliveries.get(c.as_str()),
                Some(Delivery::Mail(_) | Delivery::GraphMessage)
            )
        }) else {
            out.push(Err(format!(
                "rule {:?} has no mail channel to render",
                rule.name
            )));
            continue;
        };
        // Rules keep activities normalized; the sample says it as Entra does.
        let activity = rule
            .activities
            .first()
            .map(|a| {
                crate::rules::activities::canonical(a).map_or_else(|| a.clone(), str::to_owned)
            })
            .unwrap_or_else(|| "Update user".to_owned());
        for result in RESULTS {
            let event = samples::record(&activity, result);
            let matches = config.rules.select(&event);
            let selected = matches.iter().any(|m| m.rule.name == rule.name);
            let told = planner.owners_told(&event, &matches);
            let owner = event.targets.iter().position(|t| t.is_type("User"));
            for reader in READERS {
                let (address, via, group_name) = match reader {
                    "owner" => (samples::OWNER_UPN.to_owned(), "target", None),
                    "group" => (group.1.clone(), "group", Some(group.0.clone())),
                    _ => (
                        event.initiated_by.upn.clone().unwrap_or_default(),
                        "initiator",
                        None,
                    ),
                };
                let resolved = recipients::Resolved {
                    address,
                    via,
                    group: group_name,
                    target: owner,
                };
                let m = crate::rules::Match {
                    rule,
                    targets: owner.into_iter().collect(),
                };
                out.push(
                    planner
                        .render(&event, &m, channel, &resolved, &told)
                        .map(|n| Render {
                            rule: rule.name.clone(),
                            activity: activity.clone(),
                            reader,
                            result,
                            selected,
                            subject: n.subject,
                            text: n.text,
                            html: n.html,
                        })
                        .map_err(|e| format!("rule {:?}, {reader}, {result}: {e}", rule.name)),
                );
            }
        }
    }
    out
}

const INDEX: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Herald notice gallery</title>
<style>
  body { font-family: "Segoe UI", Helvetica, Arial, sans-serif; margin: 16px; background: #f9fafb; color: #111827; }
  h2 { font-size: 17px; margin: 28px 0 8px; }
  .row { display: flex; gap: 12px; }
  .cell { flex: 1; min-width: 0; }
  .cell h3 { font-size: 13px; color: #4b5563; margin: 0 0 4px; }
  .subject { font-size: 13px; margin: 0 0 6px; }
  .skipped { color: #b45309; font-size: 12px; }
  iframe { width: 100%; height: 720px; border: 1px solid #e5e7eb; background: #fff; }
</style>
</head>
<body>
<h1>Herald notice gallery</h1>
<p>Every rule of {{ config }} for every reader and result, rendered from sample records.</p>
{%- for row in rows %}
<h2>{{ row.rule }} — {{ row.activity }}, {{ row.result }}</h2>
{%- if not row.selected %}<p class="skipped">This rule does not select such a record; shown for review only.</p>{% endif %}
<div class="row">
  {%- for cell in row.cells %}
  <div class="cell">
    <h3>{{ cell.reader }}</h3>
    <p class="subject">Subject: <strong>{{ cell.subject }}</strong></p>
    <iframe src="{{ cell.file }}" title="{{ cell.reader }}"></iframe>
  </div>
  {%- endfor %}
</div>
{%- endfor %}
{%- if errors %}
<h2>Not rendered</h2>
<ul>{% for e in errors %}<li>{{ e }}</li>{% endfor %}</ul>
{%- endif %}
</body>
</html>
"#;

/// Writes every render into `dir` (`NAME.html`, and `NAME.txt` with the subject and the text
/// part) and `dir/index.html`, a page of them
/// side by side. Returns how many renders were written and the errors.
pub fn write(
    config: &Config,
    planner: &Planner,
    dir: &Path,
) -> std::io::Result<(usize, Vec<String>)> {
    std::fs::create_dir_all(dir)?;
    // Mail carries the logo inline (`cid:`); a page beside the renders shows the file.
    let logo = config.branding.logo.as_ref();
    if let Some(logo) = logo {
        std::fs::write(dir.join(&logo.file_name), &logo.bytes)?;
    }
    let cid = format!("cid:{}", super::message::LOGO_CID);
    let mut rows: Vec<minijinja::Value> = Vec::new();
    let mut errors = Vec::new();
    let mut written = 0;
    let mut current: Option<(String, &'static str, String, bool, Vec<minijinja::Value>)> = None;
    let mut flush = |row: Option<(String, &'static str, String, bool, Vec<minijinja::Value>)>| {
        if let Some((rule, result, activity, selected, cells)) = row {
            rows.push(context! { rule, result, activity, selected, cells });
        }
    };
    for render in renders(config, planner) {
        let render = match render {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let file = format!("{}.html", render.name());
        let html = match logo {
            Some(logo) => render.html.replace(&cid, &logo.file_name),
            None => render.html.clone(),
        };
        std::fs::write(dir.join(&file), html)?;
        std::fs::write(
            dir.join(format!("{}.txt", render.name())),
            format!("Subject: {}\n\n{}", render.subject, render.text),
        )?;
        written += 1;
        let same = current
            .as_ref()
            .is_some_and(|(rule, result, ..)| *rule == render.rule && *result == render.result);
        if !same {
            flush(current.take());
            current = Some((
                render.rule.clone(),
                render.result,
                render.activity.clone(),
                render.selected,
                Vec::new(),
            ));
        }
        if let Some((.., cells)) = current.as_mut() {
            cells.push(context! { reader => render.reader, subject => render.subject, file });
        }
    }
    flush(current.take());
    let mut env = Environment::new();
    env.add_template("index.html", INDEX)
        .map_err(std::io::Error::other)?;
    let page = env
        .get_template("index.html")
        .and_then(|t| {
            t.render(
                context! { config => config.path.display().to_string(), rows, errors => &errors },
            )
        })
        .map_err(std::io::Error::other)?;
    std::fs::write(dir.join("index.html"), page)?;
    Ok((written, errors))
}
