//! The report pages, rendered on the server from `templates/report-page.html` (its name ends
//! in `.html`: minijinja escapes every value, all of which came from an audit record or a
//! browser). One template, one state per page.

use minijinja::{Environment, Value, context};

use crate::store::{Report, ReportedNotice};

const TEMPLATE: &str = include_str!("../../templates/report-page.html");

/// What a page says. (One is built per request and rendered at once: its size is no cost.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Page {
    /// The notice and the two choices.
    Ask {
        notice: ReportedNotice,
        csrf: String,
        expires: i64,
    },
    /// What was recorded; `now` when this request recorded it. After "This was me", `csrf`
    /// lets the owner still say "I did not do this".
    Recorded {
        notice: ReportedNotice,
        report: Report,
        now: bool,
        csrf: Option<String>,
    },
    /// The link was changed or is no Herald link.
    Invalid,
    /// The link's key has been retired.
    Retired,
    Expired,
    /// No such notice (any more).
    NotFound,
    /// A form that is not this link's, or not from this page.
    Forbidden,
    /// Too many requests from this client.
    Busy,
    /// The store cannot be read.
    Unavailable,
}

impl Page {
    fn state(&self) -> &'static str {
        match self {
            Page::Ask { .. } => "ask",
            Page::Recorded { .. } => "recorded",
            Page::Invalid => "invalid",
            Page::Retired => "retired",
            Page::Expired => "expired",
            Page::NotFound => "not_found",
            Page::Forbidden => "forbidden",
            Page::Busy => "busy",
            Page::Unavailable => "unavailable",
        }
    }
}

/// The page renderer, with the organization's branding.
pub struct Pages {
    env: Environment<'static>,
    branding: Value,
}

impl Pages {
    /// Pages rendered in `env` (the notices' environment: its time filters and zone), with
    /// `branding` (the `[branding]` table as a value), from `template` (the organization's
    /// own, `[web] page_template`) or the built-in one.
    pub fn new(
        mut env: Environment<'static>,
        branding: Value,
        template: Option<String>,
    ) -> Result<Pages, String> {
        env.add_template_owned(
            "report-page.html",
            template.unwrap_or_else(|| TEMPLATE.to_owned()),
        )
        .map_err(|e| format!("report page template: {e}"))?;
        Ok(Pages { env, branding })
    }

    pub fn render(&self, page: &Page) -> String {
        let (notice, report, csrf, expires, now) = match page {
            Page::Ask {
                notice,
                csrf,
                expires,
            } => (
                Some(notice),
                None,
                Some(csrf.as_str()),
                Some(*expires),
                false,
            ),
            Page::Recorded {
                notice,
                report,
                now,
                csrf,
            } => (Some(notice), Some(report), csrf.as_deref(), None, *now),
            _ => (None, None, None, None, false),
        };
        let millis = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .ok()
                .map(|t| t.to_string())
        };
        let ctx = context! {
            state => page.state(),
            branding => self.branding.clone(),
            notice => notice.map(|n| context! {
                subject => &n.subject,
                account => &n.recipient,
                when => n.event_time.and_then(millis),
            }),
            report => report.map(|r| context! {
                verdict => &r.verdict,
                at => millis(r.created_at),
            }),
            csrf => csrf,
            expires => expires.and_then(|s| jiff::Timestamp::from_second(s).ok().map(|t| t.to_string())),
            recorded_now => now,
        };
        self.env
            .get_template("report-page.html")
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "report page did not render");
                Pages::fallback(page)
            })
    }

    /// A plain page without the template, for when it cannot be used.
    pub fn fallback(page: &Page) -> String {
        let text = match page {
            Page::NotFound => "This page does not exist.",
            _ => "This page cannot be shown right now. Contact your IT support.",
        };
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Herald</title></head><body><p>{text}</p></body></html>"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_on_a_page_is_escaped() {
        let pages = Pages::new(
            crate::plan::page_environment("UTC"),
            Value::from(minijinja::value::Serde(crate::config::Branding::default())),
            None,
        )
        .unwrap();
        let notice = ReportedNotice {
            key: "k".into(),
            event_id: "e".into(),
            tenant: "t".into(),
            rule: "r".into(),
            recipient: "<b>adele</b>@contoso.com".into(),
            subject: "<script>alert(1)</script> was added".into(),
            event_time: Some(0),
            activity: None,
            summary: None,
        };
        let html = pages.render(&Page::Ask {
            notice,
            csrf: "\"><img src=x>".into(),
            expires: 0,
        });
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<b>adele"), "{html}");
        assert!(!html.contains("\"><img"), "{html}");
        assert!(html.contains("I did not do this"));
    }
}
