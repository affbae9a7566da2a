//! `herald silence add | list | expire` (ARCHITECTURE.md §13): silences made from the command
//! line, checked against the rules (a silence of only `silenceable = false` rules is refused),
//! told to `[silences] notify` in the transaction that creates them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use herald::config::Config;
use herald::pipeline::{self, Pipeline};
use herald::store::{NewSilence, Schema, Store};
use herald::storm::{Matchers, Weekly};

#[derive(Subcommand)]
pub enum SilenceCommand {
    /// Silence the notices that match: they are recorded as `suppressed`, not sent. The
    /// security group hears of it at once, and its creator of what it held when it ends.
    Add {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        /// `field=value` (`=`, `!=`, `=~`, `!~`), several joined by commas or given again;
        /// fields: rule, activity, tenant, account, recipient, initiator, initiator.user,
        /// initiator.app, ip.
        #[arg(long = "match", value_name = "MATCHERS", required = true)]
        matchers: Vec<String>,
        /// How long it lasts (`2h`, `3d`).
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
        lasts: Option<String>,
        /// When it ends (`2026-12-24T18:00:00Z`).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// When it begins (default now).
        #[arg(long, value_name = "TIME")]
        starts: Option<String>,
        /// Only within these weekly hours: `"sat,sun 22:00-04:00 Europe/Berlin"`.
        #[arg(long, value_name = "DAYS FROM-TO ZONE")]
        weekly: Option<String>,
        /// Why (required: whoever reads the security group's notice must know).
        #[arg(long, required = true)]
        comment: String,
        /// Who makes it: an address, so the summary reaches you when it ends (default
        /// `$HERALD_OPERATOR`).
        #[arg(long, env = "HERALD_OPERATOR")]
        by: String,
    },
    /// List the silences in force (`--all`: also those that ended), with what each held.
    List {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// End a silence now; its summary follows.
    Expire {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        id: i64,
        #[arg(long, env = "HERALD_OPERATOR")]
        by: String,
    },
}

fn time(text: &str) -> Result<i64> {
    Ok(text
        .trim()
        .parse::<jiff::Timestamp>()
        .map_err(|e| anyhow::anyhow!("{text:?} is not a time like 2026-12-24T18:00:00Z: {e}"))?
        .as_millisecond())
}

fn shown(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub async fn silence(command: SilenceCommand) -> Result<ExitCode> {
    match command {
        SilenceCommand::Add {
            config,
            matchers,
            lasts,
            until,
            starts,
            weekly,
            comment,
            by,
        } => {
            let config = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let parsed = Matchers::parse(&matchers).map_err(|m| anyhow::anyhow!("--match: {m}"))?;
            let store = pipeline::open_store(&config, Schema::Check).await?;
            let pipeline = Pipeline::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
            pipeline
                .planner()
                .silence_may_hold(&parsed)
                .map_err(|m| anyhow::anyhow!("refused: {m}"))?;
            if comment.trim().is_empty() {
                bail!("--comment: say why, for whoever reads the security group's notice");
            }
            if by.trim().is_empty() {
                bail!("--by: say who makes it (an address, to hear when it ends)");
            }
            if let Some(w) = &weekly {
                Weekly::parse(w).map_err(|m| anyhow::anyhow!("--weekly: {m}"))?;
            }
            let lasts = lasts
                .as_deref()
                .map(herald::values::parse_duration)
                .transpose()
                .map_err(|m| anyhow::anyhow!("--for: {m}"))?
                .map(|d| d.as_millis() as i64);
            let until = until.as_deref().map(time).transpose()?;
            if lasts.is_none() && until.is_none() && weekly.is_none() {
                bail!("say how long: --for 2h, --until TIME, or a --weekly window");
            }
            let silence = NewSilence {
                matchers: parsed.text(),
                starts_at: starts.as_deref().map(time).transpose()?,
                ends_at: until,
                lasts,
                weekly,
                created_by: by.trim().to_owned(),
                comment: comment.trim().to_owned(),
            };
            let planner = pipeline.planner();
            let mut failed = None;
            let id = store
                .add_silence(&silence, None, |entry| {
                    match planner.silence_created(entry) {
                        Ok(notices) => notices
                            .into_iter()
                            .map(pipeline::queued_notification)
                            .collect(),
                        Err(e) => {
                            failed = Some(e);
                            Vec::new()
                        }
                    }
                })
                .await?;
            if let Some(e) = failed {
                eprintln!("herald: the security group's notice could not be made: {e}");
            }
            println!("{id}");
            eprintln!(
                "herald: silence {id} holds notices matching {}; the security group is told",
                silence.matchers
            );
            Ok(ExitCode::SUCCESS)
        }
        SilenceCommand::List { config, all, json } => {
            let config = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let store = pipeline::open_store(&config, Schema::Check).await?;
            for s in store.silences(!all).await? {
                if json {
                    println!("{}", serde_json::to_string(&s)?);
                    continue;
                }
                let ends = s
                    .ends_at
                    .map(shown)
                    .unwrap_or_else(|| "until expired".into());
                let state = match (&s.expired_at, &s.expired_by) {
                    (Some(at), Some(by)) => format!("  expired {} by {by}", shown(*at)),
                    _ => String::new(),
                };
                println!(
                    "{}  {}  from {} to {}{}  by {}  suppressed {}  {:?}{}",
                    s.id,
                    s.matchers,
                    shown(s.starts_at),
                    ends,
                    s.weekly
                        .as_deref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default(),
                    s.created_by,
                    s.suppressed,
                    s.comment,
                    state
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SilenceCommand::Expire { config, id, by } => {
            let config = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let store = pipeline::open_store(&config, Schema::Check).await?;
            if !store.expire_silence(id, &by, None).await? {
                bail!("no silence {id} in force");
            }
            eprintln!("herald: silence {id} has ended; its summary follows");
            Ok(ExitCode::SUCCESS)
        }
    }
}
