//! The `herald` command line: thin glue over the library's stages.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use herald::config::{Config, Needs};
use herald::pipeline::{Outcome, Pipeline};

mod service;
mod silences;

/// Herald tells people, within seconds, when something security-relevant happened to their
/// identity-provider account.
#[derive(Parser)]
#[command(name = "herald", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration, its rules and templates (renders each once with a sample
    /// event). Exit 0 when valid, 2 when not.
    Check {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
    },
    /// Run audit-log inputs through decode → rules → render without sending anything.
    Test {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        /// `text`: one line per notification; `json`: one JSON object per notification.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also write each message as DIR/KEY.eml (DIR/KEY.json for a webhook channel).
        #[arg(long, value_name = "DIR")]
        render: Option<PathBuf>,
        /// Files, directories (read recursively) or `-` for standard input.
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<PathBuf>,
    },
    /// Print the first notification RULE yields for EVENT_FILE (its subject on standard
    /// error), or render every rule for every reader into a gallery.
    Preview {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        #[arg(long, required_unless_present = "gallery")]
        rule: Option<String>,
        /// Which part to print.
        #[arg(long, value_enum, default_value_t = Part::Html)]
        part: Part,
        /// Render every rule for every reader (owner, group, initiator) and result from sample
        /// records into DIR, with DIR/index.html showing them side by side.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["rule", "event_file"])]
        gallery: Option<PathBuf>,
        /// The audit record(s), or `-` for standard input.
        #[arg(required_unless_present = "gallery", value_name = "EVENT_FILE")]
        event_file: Option<PathBuf>,
    },
    /// Print a starter configuration with the default rule set.
    Init,
    /// Run Herald: read the sources, queue notifications, deliver them.
    Run {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        /// Read every source to its end, deliver until nothing is pending, then exit.
        #[arg(long)]
        once: bool,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Do not migrate the store at start; fail unless `herald migrate` has been run.
        #[arg(long)]
        no_migrate: bool,
        /// This instance's name in a shared store, stable across restarts (default: the host
        /// name and a digest of the configuration's path).
        #[arg(long, env = "HERALD_INSTANCE", value_name = "NAME")]
        instance: Option<String>,
    },
    /// Create or upgrade the store's schema, then exit (for deployments that forbid
    /// migrating at start: run this once per upgrade, and `herald run --no-migrate`).
    Migrate {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
    },
    /// Inspect or retry queued notifications.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Remove rows older than `[store.retention]` says to keep (a running instance does this
    /// in the background); with `--dry-run`, only say how many would go.
    Prune {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Inspect or replay input Herald could not use.
    #[command(name = "dead-letters")]
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
    /// What owners answered on their notices' report pages.
    Reports {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Silence notices for a while (maintenance, a known bulk change): recorded, not sent.
    Silence {
        #[command(subcommand)]
        command: silences::SilenceCommand,
    },
    /// Dashboard tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// A new random token for `[dashboard] tokens`: the token (give it to its holder) on
    /// stdout, the line for the configuration (its SHA-256 only) on stderr.
    New {
        /// Who will hold it (shown in the operators' actions).
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
        role: RoleArg,
    },
}

/// A dashboard role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Reads every page.
    Viewer,
    /// Also retries, replays and resolves.
    Operator,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// List reports, newest first.
    List {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        #[arg(long, value_enum)]
        verdict: Option<VerdictArg>,
        /// Reported within this long (`24h`, `7d`) or since this time (`2026-12-01T08:00:00Z`).
        #[arg(long, value_name = "AGE|TIME")]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// A report's verdict on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerdictArg {
    /// "I did not do this".
    NotMe,
    /// "This was me".
    Me,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// List notifications, newest first.
    List {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Queued within this long (`24h`, `7d`) or since this time (`2026-12-01T08:00:00Z`).
        #[arg(long, value_name = "AGE|TIME")]
        since: Option<String>,
        #[arg(long)]
        rule: Option<String>,
        /// A recipient exactly as queued (`alice@contoso.com`).
        #[arg(long)]
        recipient: Option<String>,
        /// The audit event's id.
        #[arg(long, value_name = "ID")]
        event: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print one notification: its row, every delivery attempt and the message's headers.
    Show {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        key: String,
        /// Print the whole message, not only its headers.
        #[arg(long)]
        body: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Make a failed notification (or all of them) pending again.
    Retry {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        key: Option<String>,
        #[arg(long)]
        failed: bool,
    },
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// List dead letters.
    List {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Print one dead letter: where it came from, why, and its bytes.
    Show {
        #[arg(long, short, default_value = "herald.toml")]
        config: PathBuf,
        id: i64,
    },
    /// Decode a dead letter again with the current configuration (after a fix). The entry
    /// stays, with the replay's outcome appended; one that is used is resolved. `--all`
    /// replays every unresolved one.
    Replay(DeadLetterChoice),
    /// Mark a dead letter (or, with `--all`, every one) handled without replaying it; it is
    /// kept until retention removes it.
    Resolve(DeadLetterChoice),
}

/// Which dead letters a command acts on: one by id, or `--all`.
#[derive(Args)]
struct DeadLetterChoice {
    #[arg(long, short, default_value = "herald.toml")]
    config: PathBuf,
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<i64>,
    #[arg(long)]
    all: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum StateArg {
    Pending,
    Sent,
    Failed,
    Held,
    Merged,
    Suppressed,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The starter configuration; also `examples/herald.toml`, so the two cannot drift.
const STARTER: &str = include_str!("../examples/herald.toml");
const SAMPLE_EVENT: &[u8] = include_bytes!("../templates/sample-event.json");

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Test {
            config,
            format,
            render,
            inputs,
        } => test(&config, format, render.as_deref(), &inputs),
        Command::Preview {
            config,
            rule,
            part,
            gallery,
            event_file,
        } => match (gallery, rule, event_file) {
            (Some(dir), _, _) => write_gallery(&config, &dir),
            (None, Some(rule), Some(event_file)) => preview(&config, &rule, &event_file, part),
            // clap requires one or the other.
            _ => Err(anyhow::anyhow!(
                "preview needs --rule and EVENT_FILE, or --gallery DIR"
            )),
        },
        Command::Init => {
            print!("{STARTER}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            once,
            log_format,
            no_migrate,
            instance,
        } => {
            init_logging(log_format);
            let schema = match no_migrate {
                true => herald::store::Schema::Check,
                false => herald::store::Schema::Migrate,
            };
            block_on(service::run(&config, once, schema, instance))
        }
        Command::Migrate { config } => block_on(service::migrate(&config)),
        Command::Outbox { command } => block_on(service::outbox(command)),
        Command::DeadLetters { command } => block_on(service::dead_letters(command)),
        Command::Reports { command } => block_on(service::reports(command)),
        Command::Prune { config, dry_run } => block_on(service::prune(&config, dry_run)),
        Command::Silence { command } => block_on(silences::silence(command)),
        Command::Token {
            command: TokenCommand::New { name, role },
        } => new_token(&name, role),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn block_on(f: impl std::future::Future<Output = Result<ExitCode>>) -> Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| "info".into())
        // lettre (when built with its `tracing` feature) traces every SMTP command at
        // debug level, AUTH and its credentials included: never let it log below info.
        .add_directive("lettre=info".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the configuration, refusing one without what the command `needs`; a problem with it
/// is exit status 2.
fn load(path: &Path, needs: Needs) -> Result<Pipeline, ExitCode> {
    Config::load(path)
        .and_then(|c| c.require(needs).map(|()| c))
        .and_then(Pipeline::new)
        .map_err(|e| {
            eprintln!("herald: {e}");
            ExitCode::from(2)
        })
}

fn new_token(name: &str, role: RoleArg) -> Result<ExitCode> {
    let entry = herald::dashboard::TokenEntry {
        name: name.to_owned(),
        role: match role {
            RoleArg::Viewer => herald::dashboard::Role::Viewer,
            RoleArg::Operator => herald::dashboard::Role::Operator,
        },
        sha256: "0".repeat(64),
    };
    if let Some(problem) = entry.problem() {
        anyhow::bail!("{problem}");
    }
    let (token, hash) = herald::dashboard::session::new_token().map_err(anyhow::Error::msg)?;
    println!("{token}");
    eprintln!(
        "herald: add to [dashboard] tokens: {{ name = {name:?}, role = \"{}\", sha256 = \"{hash}\" }}",
        entry.role.as_str()
    );
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Path) -> Result<ExitCode> {
    let pipeline = match load(path, Needs::Everything) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let mut problems = pipeline.render_samples(SAMPLE_EVENT);
    let config = pipeline.config();
    let secrets = config.check_secrets();
    if secrets.is_empty()
        && let Some(web) = &config.web
        && let Err(e) = web.keys(config.dir())
    {
        problems.push(format!("{}: web.link_keys: {e}", path.display()));
    }
    problems.extend(secrets.iter().map(|e| e.to_string()));
    if config.web.is_some()
        && let Err(e) = herald::pipeline::report_pages(config)
    {
        problems.push(format!("{}: web.page_template: {e}", path.display()));
    }
    if secrets.is_empty()
        && let Some(dashboard) = &config.dashboard
        && let Err(e) = herald::dashboard::check_session_key(dashboard, config.dir())
    {
        problems.push(format!("{}: dashboard.{e}", path.display()));
    }
    if let Some(tls) = &config.admin.tls
        && let Err(e) = tls.acceptor(config.dir())
    {
        problems.push(format!("{}: admin.tls.{e}", path.display()));
    }
    for (name, app) in &config.microsoft {
        if let Err(e) = app.check_certificate(config.dir()) {
            problems.push(format!("{}: microsoft.{name}: {e}", path.display()));
        }
    }
    for warning in &config.warnings {
        eprintln!("herald: {warning}");
    }
    for problem in &problems {
        eprintln!("herald: {problem}");
    }
    if !problems.is_empty() {
        return Ok(ExitCode::from(2));
    }
    for rule in config
        .rules
        .rules()
        .iter()
        .filter(|r| r.matches_any_activity())
    {
        eprintln!(
            "herald: note: rule {:?} names no activities, so every record is fully decoded for it",
            rule.name
        );
    }
    // Storm control as it applies (README: "Storms").
    for t in &config.throttles {
        let scope = |list: &[String], all: &str| match list.is_empty() {
            true => all.to_owned(),
            false => list.join(", "),
        };
        eprintln!(
            "herald: note: throttle: at most {} notices per recipient{} per {} on {} ({}); the rest wait for one digest",
            t.limit,
            match t.by {
                herald::storm::ThrottleBy::Recipient => "",
                herald::storm::ThrottleBy::Rule => " and rule",
                herald::storm::ThrottleBy::Initiator => " and initiator",
            },
            herald::config::shown_duration(t.window),
            scope(&t.channels, "every channel"),
            scope(&t.rules, "every rule"),
        );
    }
    if config.silences.notify.is_empty() {
        eprintln!(
            "herald: note: nobody but its creator hears of a silence made: [silences] notify names who does (the security team), so nobody mutes Herald quietly"
        );
    }
    for s in &config.configured_silences {
        eprintln!(
            "herald: note: silence in the configuration: {}{} ({})",
            s.matchers,
            s.weekly
                .as_deref()
                .map(|w| format!(", {w}"))
                .unwrap_or_default(),
            s.comment
        );
    }
    // The Graph permissions the response actions need, granted to the app with an
    // administrator's consent: a missing one fails its action with Graph's 403.
    let mut actions: Vec<_> = config.report.actions.clone();
    for rule in config.rules.rules() {
        actions.extend(rule.report_actions.iter().flatten().copied());
    }
    actions.sort();
    actions.dedup();
    if let (Some(app), false) = (&config.report.app, actions.is_empty()) {
        eprintln!(
            "herald: note: report actions read the account first, which needs the Graph application permission {} for microsoft.{app}",
            herald::channel::graph_action::READ_USER
        );
        for action in &actions {
            eprintln!(
                "herald: note: report action {} needs the Graph application permission {} for microsoft.{app}, with an administrator's consent",
                action.as_str(),
                action.permission()
            );
        }
    }
    if let Some(dashboard) = &config.dashboard
        && dashboard.auth == herald::dashboard::Auth::Entra
        && let (Some(app), Some(url)) = (&dashboard.app, &dashboard.public_url)
    {
        eprintln!(
            "herald: note: the dashboard signs in with microsoft.{app}: register the redirect URI {url}/auth/callback on its Web platform, and its app roles or groups claim for [dashboard] operators and viewers"
        );
    }
    println!(
        "{}: valid ({} rules, {} channels, {} groups{})",
        path.display(),
        config.rules.rules().len(),
        config.channels.len(),
        config.groups.len(),
        match config.warnings.len() {
            0 => String::new(),
            n => format!(", {n} warnings"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn test(
    path: &Path,
    format: Format,
    render: Option<&Path>,
    inputs: &[PathBuf],
) -> Result<ExitCode> {
    let pipeline = match load(path, Needs::RulesAndChannels) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let mut outcome = Outcome::default();
    let mut unreadable = 0;
    for input in list_inputs(inputs) {
        match input.and_then(|path| read_input(&path).map(|bytes| (path, bytes))) {
            Ok((path, bytes)) => pipeline.process(&input_name(&path), &bytes, &mut outcome),
            Err((path, e)) => {
                eprintln!("herald: {}: cannot read: {e}", input_name(&path));
                unreadable += 1;
            }
        }
    }
    let suppressed = outcome.once_per_action();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let width = |f: fn(&herald::plan::Notification) -> &str| {
        outcome
            .notifications
            .iter()
            .map(|n| f(n).chars().count())
            .max()
            .unwrap_or(0)
    };
    let (rule_w, channel_w, recipient_w) = (
        width(|n| &n.rule),
        width(|n| &n.channel),
        width(|n| &n.recipient),
    );
    for n in &outcome.notifications {
        match format {
            Format::Json => {
                let line = serde_json::json!({
                    "key": n.key,
                    "event_id": n.event_id,
                    "activity": n.activity,
                    "rule": n.rule,
                    "channel": n.channel,
                    "recipient": n.recipient,
                    "subject": n.subject,
                });
                writeln!(out, "{line}")?;
            }
            Format::Text => writeln!(
                out,
                "{}  {:<rule_w$}  {:<channel_w$}  {:<recipient_w$}  {}",
                n.key, n.rule, n.channel, n.recipient, n.subject
            )?,
        }
    }
    out.flush()?;

    if let Some(dir) = render {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for n in &outcome.notifications {
            let file = dir.join(format!("{}.{}", n.key, n.format.extension()));
            std::fs::write(&file, &n.message)
                .with_context(|| format!("writing {}", file.display()))?;
        }
    }

    summarize(&outcome, render);
    for s in &suppressed {
        eprintln!(
            "told nobody: rule {:?} selected event {:?}, but {}",
            s.rule, s.event_id, s.reason
        );
    }
    Ok(if unreadable > 0 || !outcome.failures.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn summarize(o: &Outcome, render: Option<&Path>) {
    let skipped: u64 = o.skipped.values().sum();
    let by_category: Vec<String> = o.skipped.iter().map(|(c, n)| format!("{c} {n}")).collect();
    eprintln!(
        "records decoded: {}, selected by a rule: {}, skipped: {}{}, dead letters: {}, notifications: {}{}",
        o.records,
        o.selected,
        skipped,
        if by_category.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_category.join(", "))
        },
        o.dead_letters.len(),
        o.notifications.len(),
        if o.duplicates > 0 {
            format!(" ({} duplicates dropped)", o.duplicates)
        } else {
            String::new()
        },
    );
    for dead in &o.dead_letters {
        eprintln!("dead letter: {dead}");
    }
    for (rule, event) in &o.unaddressed {
        eprintln!(
            "no recipient: rule {rule:?} selected event {event:?} but none of its recipients has an address"
        );
    }
    for (event, why) in &o.routine {
        eprintln!("told nobody: event {event:?} was selected, but its change is {why}");
    }
    for failure in &o.failures {
        eprintln!("render failed: {failure}");
    }
    if let Some(dir) = render {
        eprintln!("messages written to {}", dir.display());
    }
}

/// The part of a notice `herald preview` prints.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Part {
    Html,
    Text,
    Subject,
}

fn preview(path: &Path, rule: &str, event_file: &Path, part: Part) -> Result<ExitCode> {
    let pipeline = match load(path, Needs::RulesAndChannels) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    if pipeline.config().rules.get(rule).is_none() {
        let names: Vec<&str> = pipeline
            .config()
            .rules
            .rules()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        bail!("no rule {rule:?}; the rules are: {}", names.join(", "));
    }
    let bytes =
        read_input(event_file).map_err(|(p, e)| anyhow::anyhow!("reading {}: {e}", p.display()))?;
    let mut outcome = Outcome::default();
    pipeline.process(&input_name(event_file), &bytes, &mut outcome);
    if let Some(failure) = outcome.failures.iter().find(|f| f.rule == rule) {
        bail!("{failure}");
    }
    match outcome.notifications.iter().find(|n| n.rule == rule) {
        Some(n) => {
            match part {
                Part::Subject => println!("{}", n.subject),
                Part::Html | Part::Text => {
                    eprintln!("Subject: {}", n.subject);
                    let body = if matches!(part, Part::Html) {
                        &n.html
                    } else {
                        &n.text
                    };
                    if body.is_empty() {
                        bail!(
                            "channel {:?} sends no {part:?} part; try --part subject",
                            n.channel
                        );
                    }
                    print!("{body}");
                    if !body.ends_with('\n') {
                        println!();
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        None => bail!(
            "rule {rule:?} yields no notification for {} ({} records, {} dead letters)",
            event_file.display(),
            outcome.records,
            outcome.dead_letters.len()
        ),
    }
}

fn write_gallery(path: &Path, dir: &Path) -> Result<ExitCode> {
    let pipeline = match load(path, Needs::RulesAndChannels) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let (written, errors) =
        herald::plan::gallery::write(pipeline.config(), pipeline.planner(), dir)
            .with_context(|| format!("writing the gallery into {}", dir.display()))?;
    for e in &errors {
        eprintln!("not rendered: {e}");
    }
    eprintln!(
        "{written} notices rendered; open {}",
        dir.join("index.html").display()
    );
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

type InputError = (PathBuf, std::io::Error);

/// Every input to read, in order: files as given, directories walked in name order (hidden
/// entries skipped), `-` for standard input. Read one at a time, so a large directory is never
/// held in memory at once.
fn list_inputs(inputs: &[PathBuf]) -> Vec<Result<PathBuf, InputError>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files = Vec::new();
            match walk(input, &mut files) {
                Ok(()) => {
                    files.sort();
                    out.extend(files.into_iter().map(Ok));
                }
                Err(e) => out.push(Err((input.clone(), e))),
            }
        } else {
            out.push(Ok(input.clone()));
        }
    }
    out
}

fn read_input(path: &Path) -> Result<Vec<u8>, InputError> {
    let result = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    result.map_err(|e| (path.to_owned(), e))
}

fn input_name(path: &Path) -> String {
    path.display().to_string()
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
