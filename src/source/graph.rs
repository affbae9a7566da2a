//! `kind = "graph"`: the Entra audit log read straight from Microsoft Graph, for tenants with no
//! Event Hubs: `GET /v1.0/auditLogs/directoryAudits?$filter=activityDateTime ge T` every
//! `interval`, following `@odata.nextLink` to the last page.
//!
//! `T` is the newest `activityDateTime` committed so far minus `overlap`, because Entra writes
//! some records minutes after their time: the overlap reads them late rather than never. What
//! the overlap reads twice is absorbed by the notification keys (one row per event, rule,
//! channel and recipient). Each page is committed as it arrives; the new position is committed
//! with the last page, so a poll cut short is read again from the old one.
//!
//! Graph's records carry no `tenantId`, so they are taken as the app registration's tenant:
//! the same record read here and from Event Hubs (whose envelope names the tenant) gets the
//! same notification key, and its owner is told once.
//!
//! Late arrivals: a record is read exactly once if it appears in Graph no later than
//! `overlap − interval` after the newest record committed before it. Microsoft documented
//! audit-log latency as 2 minutes at the 95th and 5 minutes at the 99th percentile, so the
//! default overlap, 10 minutes, is twice the 99th. A record seen for the first time in the
//! oldest tenth of the window was nearly missed: it is counted
//! (`herald_graph_late_records_total`) and logged, a sign that `overlap` should be larger.
//!
//! Graph allows about 5 requests per 10 seconds per app and tenant for this API: requests are
//! spaced at least 2 s apart, and a `429` or `503` waits its `Retry-After`. A `401` renews the
//! token once; a `403` says which permission is missing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::msgraph::{MicrosoftApp, Tokens};
use crate::pipeline::{Ingest, Piece};
use crate::store::{Store, StoreError};
use crate::values::duration;
use crate::web::Readiness;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSourceConfig {
    pub name: String,
    /// The `[microsoft.NAME]` registration to read with (needs `AuditLog.Read.All`).
    pub app: String,
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub interval: Duration,
    #[serde(default = "default_overlap", deserialize_with = "duration")]
    pub overlap: Duration,
    /// With no position stored yet, how far back the first poll reads.
    #[serde(default = "default_start", deserialize_with = "duration")]
    pub start: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_overlap() -> Duration {
    Duration::from_secs(10 * 60)
}

fn default_start() -> Duration {
    Duration::from_secs(60 * 60)
}

/// The store key of the position: the newest `activityDateTime` committed.
const NEWEST: &str = "newest";
/// The least time between two requests (Graph: about 5 per 10 s per app and tenant).
const SPACING: Duration = Duration::from_secs(2);
/// Tries at one URL before the poll gives up until the next interval.
const TRIES: u32 = 6;

/// What a page holds that the source itself needs.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Stamp>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct Stamp {
    #[serde(rename = "activityDateTime")]
    activity_date_time: Option<String>,
}

pub struct GraphSource {
    config: GraphSourceConfig,
    /// The app registration's tenant id, the tenant of every record read.
    tenant: String,
    http: reqwest::Client,
    tokens: Tokens,
    first: reqwest::Url,
    readiness: Arc<Readiness>,
}

/// Why a poll stopped early.
enum PollError {
    Store(StoreError),
    Graph(String),
}

impl GraphSource {
    pub fn new(
        config: &GraphSourceConfig,
        apps: &std::collections::BTreeMap<String, MicrosoftApp>,
        base: &Path,
        readiness: Arc<Readiness>,
    ) -> Result<GraphSource, String> {
        let app = apps
            .get(&config.app)
            .ok_or_else(|| format!("app: no [microsoft.{}] table", config.app))?;
        let http = crate::channel::http_client(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let tokens = Tokens::new(app, base, http.clone())
            .map_err(|e| format!("microsoft.{}: {e}", config.app))?;
        let first = app.graph_url(&["auditLogs", "directoryAudits"])?;
        Ok(GraphSource {
            config: config.clone(),
            tenant: app.tenant_id.clone(),
            http,
            tokens,
            first,
            readiness,
        })
    }

    /// Polls until `stop`; with `once`, polls once and returns (an error if that poll failed).
    pub async fn run<S: Store>(
        self,
        ingest: Ingest<S>,
        stop: CancellationToken,
        once: bool,
    ) -> Result<(), String> {
        let ingest = ingest.for_tenant(&self.tenant);
        loop {
            let polled = self.poll(&ingest, &stop).await;
            if stop.is_cancelled() {
                return Ok(());
            }
            match polled {
                Ok(()) => self.readiness.source(&self.config.name, None),
                Err(PollError::Store(e)) => return Err(e.to_string()),
                Err(PollError::Graph(why)) => {
                    tracing::error!(source = %self.config.name, error = %why, "polling Graph failed; trying again at the next interval");
                    self.readiness.source(&self.config.name, Some(why.clone()));
                    if once {
                        return Err(why);
                    }
                }
            }
            if once {
                return Ok(());
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.interval) => {}
                _ = stop.cancelled() => return Ok(()),
            }
        }
    }

    /// One poll: every page from the stored position (less the overlap) to the last.
    async fn poll<S: Store>(
        &self,
        ingest: &Ingest<S>,
        stop: &CancellationToken,
    ) -> Result<(), PollError> {
        let name = &self.config.name;
        let stored = ingest
            .checkpoint_patiently(name, NEWEST, stop)
            .await
            .map_err(PollError::Store)?
            .and_then(|t| t.parse::<Timestamp>().ok());
        let from = match stored {
            Some(newest) => newest - self.config.overlap,
            None => Timestamp::now() - self.config.start,
        };
        let mut url = self.first.clone();
        url.set_query(Some(&format!(
            "$filter=activityDateTime%20ge%20{}",
            from.strftime("%Y-%m-%dT%H:%M:%SZ")
        )));
        let mut newest = stored;
        let mut page_number = 0;
        loop {
            page_number += 1;
            let bytes = self.fetch(&url, stop).await?;
            let page: Page = serde_json::from_slice(&bytes).map_err(|e| {
                PollError::Graph(format!("page {page_number}: not a Graph page ({e})"))
            })?;
            for stamp in &page.value {
                if let Some(t) = stamp
                    .activity_date_time
                    .as_deref()
                    .and_then(|t| t.parse::<Timestamp>().ok())
                {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
            }
            let next = match &page.next_link {
                Some(link) => Some(reqwest::Url::parse(link).map_err(|_| {
                    PollError::Graph(format!("page {page_number}: @odata.nextLink is not a URL"))
                })?),
                None => None,
            };
            let input = format!("graph directoryAudits page {page_number}");
            // The position moves only with the last page.
            let checkpoint = match (&next, newest) {
                (None, Some(n)) => Some((NEWEST.to_owned(), n.to_string())),
                _ => None,
            };
            let intake = ingest
                .commit_patiently(
                    Piece {
                        source: name,
                        input: &input,
                        bytes: &bytes,
                        first_line: 1,
                        checkpoint,
                    },
                    stop,
                )
                .await
                .map_err(PollError::Store)?;
            tracing::info!(source = %name, page = page_number, records = intake.records, queued = intake.committed.queued, duplicates = intake.committed.duplicates, "committed a Graph page");
            if stored.is_some() {
                self.count_late(from, &intake.committed.first_seen);
            }
            match next {
                Some(next) => url = next,
                None => return Ok(()),
            }
        }
    }

    /// Counts the records seen for the first time in the oldest tenth of this poll's window
    /// (`from` to `from + overlap / 10`): they arrived almost `overlap` late.
    fn count_late(&self, from: Timestamp, first_seen_ms: &[i64]) {
        let late = nearly_missed(from, self.config.overlap, first_seen_ms);
        if late > 0 {
            metrics::counter!("herald_graph_late_records_total", "source" => self.config.name.clone())
                .increment(late);
            tracing::warn!(source = %self.config.name, records = late, overlap_s = self.config.overlap.as_secs(),
                "records arrived in Graph nearly `overlap` after newer ones; a larger overlap keeps later ones from being missed");
        }
    }

    /// One page, waiting out throttling and renewing a refused token once.
    async fn fetch(
        &self,
        url: &reqwest::Url,
        stop: &CancellationToken,
    ) -> Result<Vec<u8>, PollError> {
        let mut renewed = false;
        let mut wait = SPACING;
        for _ in 0..TRIES {
            let token = self.tokens.token().await.map_err(PollError::Graph)?;
            let response = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose())
                .send()
                .await;
            // Space requests (Graph's limit), whatever the answer.
            let pause = tokio::time::sleep(SPACING);
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    let why = if e.is_timeout() {
                        "no reply in time"
                    } else {
                        "cannot reach Graph"
                    };
                    tracing::warn!(source = %self.config.name, why, "directoryAudits");
                    self.sleep(wait, stop).await?;
                    wait = (wait * 2).min(Duration::from_secs(60));
                    continue;
                }
            };
            let status = response.status();
            let retry_after = crate::channel::retry_after(response.headers());
            let body = response.bytes().await.map_err(|_| {
                PollError::Graph("directoryAudits: the answer was cut off".to_owned())
            })?;
            if status.is_success() {
                pause.await;
                return Ok(body.to_vec());
            }
            let why = graph_error(&body);
            match status.as_u16() {
                401 if !renewed => {
                    self.tokens.reject(&token).await;
                    renewed = true;
                }
                403 => {
                    return Err(PollError::Graph(format!(
                        "Graph refused directoryAudits (HTTP 403: {why}): the app registration needs the Microsoft Graph application permission AuditLog.Read.All, with admin consent"
                    )));
                }
                429 | 503 | 504 | 500 | 502 => {
                    let after = retry_after.unwrap_or(wait).max(SPACING);
                    tracing::warn!(source = %self.config.name, status = status.as_u16(), retry_in_ms = after.as_millis() as u64, "Graph is throttling or unavailable; waiting");
                    self.sleep(after, stop).await?;
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
                _ => {
                    return Err(PollError::Graph(format!(
                        "directoryAudits: HTTP {status}: {why}"
                    )));
                }
            }
        }
        Err(PollError::Graph(format!(
            "directoryAudits: no page after {TRIES} tries"
        )))
    }

    async fn sleep(&self, wait: Duration, stop: &CancellationToken) -> Result<(), PollError> {
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = stop.cancelled() => Err(PollError::Graph("stopping".to_owned())),
        }
    }
}

/// How many of `first_seen_ms` fall in the oldest tenth of the window that starts at `from`.
fn nearly_missed(from: Timestamp, overlap: Duration, first_seen_ms: &[i64]) -> u64 {
    let start = from.as_millisecond();
    let edge = start.saturating_add((overlap.as_millis() / 10).min(i64::MAX as u128) as i64);
    first_seen_ms
        .iter()
        .filter(|t| (start..edge).contains(t))
        .count() as u64
}

/// Whether `tenant` is a tenant id (a GUID), which is what Entra writes in records' `tenantId`.
pub(crate) fn is_tenant_id(tenant: &str) -> bool {
    let groups: Vec<&str> = tenant.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `code: message` of a Graph error answer, or its first characters.
fn graph_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Answer {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<Answer>(body) {
        Ok(a) => format!("{}: {}", a.error.code, a.error.message),
        Err(_) => String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_first_sightings_in_the_oldest_tenth_are_late() {
        let from: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let ms = |s: i64| from.as_millisecond() + s * 1000;
        let overlap = Duration::from_secs(600);
        // 0 s and 59 s are in the oldest minute of a 10-minute window; 60 s and later are not.
        assert_eq!(
            nearly_missed(from, overlap, &[ms(0), ms(59), ms(60), ms(300), ms(-1)]),
            2
        );
        assert_eq!(nearly_missed(from, overlap, &[]), 0);
    }

    #[test]
    fn tenant_ids_are_guids() {
        assert!(is_tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_tenant_id("contoso.onmicrosoft.com"));
        assert!(!is_tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db4"));
    }
}
