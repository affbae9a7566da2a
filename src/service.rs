//! The commands that work on a running installation's store: `run`, `outbox`, `dead-letters`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use tokio_util::sync::CancellationToken;

use herald::config::Config;
use herald::pipeline::{self, Ingest, Pipeline};
use herald::store::{OutboxQuery, Schema, State, Store};

use super::{
    DeadLetterChoice, DeadLetterCommand, Format, OutboxCommand, ReportCommand, StateArg, VerdictArg,
};

fn load(path: &Path) -> Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `herald run`. With `--once`, exit status 1 when any notification of this run ended
/// `failed`, or is left pending because its channel is paused or not in this configuration,
/// so that a script or CI job notices.
pub async fn run(
    path: &Path,
    once: bool,
    schema: Schema,
    instance: Option<String>,
) -> Result<ExitCode> {
    let config = load(path)?;
    config
        .require(herald::config::Needs::Everything)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stop = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(stop.clone()));
    let started = std::time::Instant::now();
    let delivered = pipeline::run(config, once, schema, instance, stop).await;
    signals.abort();
    let delivered = delivered?;
    tracing::info!(
        sent = delivered.sent,
        retried = delivered.retried,
        failed = delivered.failed,
        seconds = started.elapsed().as_secs_f64(),
        "stopped"
    );
    if once {
        let config = load(path)?;
        let store = pipeline::open_store(&config, Schema::Check).await?;
        let counts = store.counts().await?;
        eprintln!(
            "herald: outbox: {} sent, {} failed, {} pending (this run: {} sent, {} retries, {} failed)",
            counts.sent,
            counts.failed,
            counts.pending,
            delivered.sent,
            delivered.retried,
            delivered.failed
        );
        for (name, channel) in &config.channels {
            if let herald::channel::ChannelConfig::File(c) = channel {
                eprintln!(
                    "herald: channel {name} writes messages as .eml files into {}",
                    config.dir().join(&c.dir).display()
                );
            }
        }
        // Whatever did not go out is said, and any of it makes the exit status 1.
        let mut undelivered = false;
        for (channel, pending) in pipeline::for_other_channels(&store, &config).await? {
            eprintln!(
                "herald: {pending} notifications wait for channel {channel}, which this configuration does not have"
            );
            undelivered = true;
        }
        if !delivered.paused.is_empty() && counts.pending > 0 {
            for (channel, cause) in &delivered.paused {
                eprintln!("herald: channel {channel} is paused: {cause}");
            }
            eprintln!(
                "herald: {} notifications are still pending; they are sent by the next run once the channel works",
                counts.pending
            );
            undelivered = true;
        }
        if delivered.failed > 0 {
            eprintln!(
                "herald: {} notifications failed in this run (`herald outbox list --state failed`)",
                delivered.failed
            );
            undelivered = true;
        }
        if undelivered {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald migrate`: brings the store's schema up to this version (for deployments that run
/// `herald run --no-migrate`).
pub async fn migrate(path: &Path) -> Result<ExitCode> {
    let config = load(path)?;
    let store = pipeline::open_store(&config, Schema::Migrate).await?;
    eprintln!(
        "herald: the {} store is migrated to this version",
        store.engine().name()
    );
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM: stop taking input, finish what is in flight.
async fn stop_on_signal(stop: CancellationToken) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: finishing the sends in flight");
    stop.cancel();
}

/// A store time as UTC with milliseconds, always the same width (lists line up).
fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

pub async fn outbox(command: OutboxCommand) -> Result<ExitCode> {
    match command {
        OutboxCommand::List {
            config,
            state,
            since,
            rule,
            recipient,
            event,
            limit,
            format,
        } => {
            let store = pipeline::open_store(&load(&config)?, Schema::Check).await?;
            let query = OutboxQuery {
                state: state.map(|s| match s {
                    StateArg::Pending => State::Pending,
                    StateArg::Sent => State::Sent,
                    StateArg::Failed => State::Failed,
                    StateArg::Held => State::Held,
                    StateArg::Merged => State::Merged,
                    StateArg::Suppressed => State::Suppressed,
                }),
                since: since.as_deref().map(parse_since).transpose()?,
                rule,
                recipient,
                channel: None,
                event,
                after: None,
                limit,
            };
            for e in store.outbox(&query).await? {
                match format {
                    Format::Json => println!("{}", serde_json::to_string(&e)?),
                    Format::Text => println!(
                        "{}  {:<10}  {}  attempts {}  {}  {}  {}{}{}",
                        e.key,
                        e.state.as_str(),
                        time(e.created_at),
                        e.attempts,
                        e.rule,
                        e.recipient,
                        e.subject,
                        herald::storm::fate_in_words(e.state.as_str(), e.held_by.as_deref())
                            .map(|why| format!("  ({why})"))
                            .unwrap_or_default(),
                        e.last_error
                            .map(|err| format!("  last error: {err}"))
                            .unwrap_or_default()
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Show {
            config,
            key,
            body,
            format,
        } => {
            let store = pipeline::open_store(&load(&config)?, Schema::Check).await?;
            let Some((entry, message)) = store.notification(&key).await? else {
                bail!("no notification with key {key:?}");
            };
            let attempts = store.attempts(&key).await?;
            let shown = if body {
                message.as_slice()
            } else {
                headers(&message)
            };
            let shown = String::from_utf8_lossy(shown);
            if let Format::Json = format {
                let mut value = serde_json::to_value(&entry)?;
                value["attempts_recorded"] = serde_json::to_value(&attempts)?;
                value[if body { "message" } else { "headers" }] = shown.as_ref().into();
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "key:        {}\nstate:      {}\nevent:      {}\nrule:       {}\nchannel:    {}\nrecipient:  {}\nsubject:    {}\nqueued:     {}\nattempts:   {}",
                entry.key,
                entry.state.as_str(),
                entry.event_id,
                entry.rule,
                entry.channel,
                entry.recipient,
                entry.subject,
                time(entry.created_at),
                entry.attempts,
            );
            match (entry.state, entry.sent_at) {
                (State::Sent, Some(at)) => println!("sent:       {}", time(at)),
                (State::Pending, _) => println!("next try:   {}", time(entry.next_attempt_at)),
                _ => {}
            }
            if let Some(why) =
                herald::storm::fate_in_words(entry.state.as_str(), entry.held_by.as_deref())
            {
                println!("why:        {why}");
            }
            if let Some(error) = &entry.last_error {
                println!("last error: {error}");
            }
            println!();
            if attempts.is_empty() {
                println!("no attempts recorded");
            }
            for a in &attempts {
                println!(
                    "{}  {:<8}  {:>6} ms  {}  {}",
                    time(a.at),
                    a.outcome,
                    a.duration_ms,
                    a.instance,
                    a.reply
                );
            }
            println!("\n{}", shown.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry {
            config,
            key,
            failed,
        } => {
            let store = pipeline::open_store(&load(&config)?, Schema::Check).await?;
            let n = store
                .retry(if failed { None } else { key.as_deref() })
                .await?;
            if n == 0 && !failed {
                bail!(
                    "no failed notification with key {:?}",
                    key.unwrap_or_default()
                );
            }
            eprintln!("herald: {n} notifications pending again; `herald run` delivers them");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn dead_letters(command: DeadLetterCommand) -> Result<ExitCode> {
    match command {
        DeadLetterCommand::List { config, limit } => {
            let store = pipeline::open_store(&load(&config)?, Schema::Check).await?;
            for d in store.dead_letters(limit).await? {
                println!(
                    "{}  {}  {}  {}  {}: {}: {}",
                    d.id,
                    time(d.created_at),
                    if d.resolved_at.is_some() {
                        "resolved"
                    } else {
                        "open    "
                    },
                    d.source,
                    d.input,
                    d.position,
                    d.reason
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Show { config, id } => {
            let store = pipeline::open_store(&load(&config)?, Schema::Check).await?;
            let Some(d) = store.dead_letter(id).await? else {
                bail!("no dead letter {id}");
            };
            println!(
                "id:       {}\nsource:   {}\ninput:    {}\nposition: {}\nreason:   {}\nkept at:  {}\nresolved: {}",
                d.id,
                d.source,
                d.input,
                d.position,
                d.reason,
                time(d.created_at),
                d.resolved_at.map_or_else(|| "no".to_owned(), time),
            );
            for replay in d.replays.lines() {
                println!("replay:   {replay}");
            }
            println!();
            println!("{}", String::from_utf8_lossy(&d.raw));
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Replay(DeadLetterChoice { config, id, all }) => {
            let config = load(&config)?;
            let store = pipeline::open_store(&config, Schema::Check).await?;
            let ingest = Ingest::new(
                Arc::new(Pipeline::new(config).map_err(|e| anyhow::anyhow!("{e}"))?),
                store.clone(),
            );
            let ids: Vec<i64> = if all {
                store
                    .dead_letters(i64::MAX)
                    .await?
                    .iter()
                    .filter(|d| d.resolved_at.is_none())
                    .map(|d| d.id)
                    .collect()
            } else {
                id.into_iter().collect()
            };
            let mut still_dead = 0;
            for id in ids {
                let Some(d) = store.dead_letter(id).await? else {
                    bail!("no dead letter {id}");
                };
                let intake = ingest.replay(id, &d.source, &d.input, &d.raw).await?;
                still_dead += intake.committed.dead_letters;
                eprintln!(
                    "herald: dead letter {id}: {} records, {} notifications queued{}",
                    intake.records,
                    intake.committed.queued,
                    if intake.committed.dead_letters > 0 {
                        ", still unusable (kept, with this replay's reason in its history)"
                    } else {
                        ""
                    }
                );
            }
            Ok(if still_dead > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        DeadLetterCommand::Resolve(DeadLetterChoice { config, id, all }) => {
            let store = pipeline::open_store(&load(&config)?, Schema::Check).await?;
            if let Some(id) = id
                && store.dead_letter(id).await?.is_none()
            {
                bail!("no dead letter {id}");
            }
            let n = store
                .resolve_dead_letters(if all { None } else { id })
                .await?;
            eprintln!("herald: {n} dead letters resolved");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `herald reports`.
pub async fn reports(command: ReportCommand) -> Result<ExitCode> {
    match command {
        ReportCommand::List {
            config,
            verdict,
            since,
            limit,
            format,
        } => {
            let store = pipeline::open_store(&load(&config)?, Schema::Check).await?;
            let verdict = verdict.map(|v| match v {
                VerdictArg::NotMe => herald::store::Verdict::NotMe,
                VerdictArg::Me => herald::store::Verdict::Me,
            });
            let since = since.as_deref().map(parse_since).transpose()?;
            for r in store.reports(verdict, since, limit).await? {
                match format {
                    Format::Json => println!("{}", serde_json::to_string(&r)?),
                    Format::Text => {
                        println!(
                            "{}  {:<6}  {}  {}  {}  from {}  event {}",
                            r.key,
                            r.verdict,
                            time(r.created_at),
                            r.account,
                            r.subject,
                            r.client_ip,
                            r.event_id
                        );
                        for a in &r.actions {
                            println!(
                                "    {}: {} after {} attempts{}",
                                a.action,
                                a.state,
                                a.attempts,
                                a.error
                                    .as_deref()
                                    .map(|e| format!(" — {e}"))
                                    .unwrap_or_default()
                            );
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--since`: an age (`24h`, `7d`: that long ago) or a time (`2026-12-01T08:00:00Z`).
fn parse_since(text: &str) -> Result<i64> {
    if let Ok(age) = herald::values::parse_duration(text) {
        return Ok(herald::store::now_millis().saturating_sub(age.as_millis() as i64));
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| anyhow::anyhow!("--since {text:?}: neither an age (\"24h\", \"7d\") nor a time (\"2026-12-01T08:00:00Z\")"))
}

/// A stored message's headers: for mail, everything before the first empty line; a JSON
/// payload (webhook, Teams, Slack, Graph mail) has none, so it is shown whole.
fn headers(message: &[u8]) -> &[u8] {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| message.windows(2).position(|w| w == b"\n\n"));
    match end {
        Some(end) if !message.starts_with(b"{") => &message[..end],
        _ => message,
    }
}

/// `herald prune`: what `[store.retention]` says may go, in batches until none is left.
pub async fn prune(path: &Path, dry_run: bool) -> Result<ExitCode> {
    let config = load(path)?;
    let store = pipeline::open_store(&config, Schema::Check).await?;
    let retention = &config.store.retention;
    let pruned = if dry_run {
        store.prune(retention, i64::MAX, true).await?
    } else {
        pipeline::prune_all(&store, retention).await?
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    eprintln!(
        "herald: {verb} {} sent notifications (older than {}), {} failed (older than {}), {} delivery attempts with them, {} dead letters (older than {}), {} history rows (older than {}), {} selected events and {} action claims (older than {}), {} reports (older than {}), {} notices merged or suppressed and {} storm windows and repeats",
        pruned.sent,
        days(retention.sent),
        pruned.failed,
        days(retention.failed),
        pruned.attempts,
        pruned.dead_letters,
        days(retention.dead_letters),
        pruned.history,
        days(retention.history),
        pruned.events_seen,
        pruned.actions_told,
        days(retention.events_seen),
        pruned.reports,
        days(retention.reports),
        pruned.kept,
        pruned.storm,
    );
    Ok(ExitCode::SUCCESS)
}

fn days(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else {
        format!("{}h", secs / 3_600)
    }
}
