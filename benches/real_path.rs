//! The real path at the speed of parsing: `herald run --once` with the starter configuration
//! (file source → rules → SQLite outbox → file channel) over a generated stream of 200,000
//! newline-delimited diagnostic records (about 265 MB, 1% of them password resets that the
//! default rules select), beside the baseline measured in the same run: a plain
//! `serde_json::Value` parse of the same bytes, line by line. Reports both rates, their ratio
//! (goal: Herald ≥ 1.0× the parse), Herald's peak RSS (goal: under 100 MB whatever the file's
//! size), its user and system time, and the notices written.
//!
//! Run: `scripts/bench --bench real_path` (`HERALD_REAL_PATH_RECORDS` to change the count). To
//! measure another build of Herald in the same sitting, point `HERALD_REAL_PATH_BINARY` at
//! that build's `herald`: it runs after this build, over the same file and baseline.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::Scratch;

/// One record: a password reset (selected) or an application update (not), padded to about
/// 1,325 bytes as real records are with their user agents and modified properties.
fn record(i: usize, selected: bool) -> String {
    let activity = if selected {
        "Reset user password"
    } else {
        "Update application"
    };
    let target = if selected {
        format!(
            r#"{{"id":"u-{i}","displayName":"User {i}","type":"User","userPrincipalName":"user{i}@contoso.com","modifiedProperties":[]}}"#
        )
    } else {
        format!(
            r#"{{"id":"app-{i}","displayName":"App {i}","type":"Application","modifiedProperties":[{{"displayName":"AppAddress","oldValue":"[]","newValue":"[{{\"AddressType\":0,\"Address\":\"https://app{i}.contoso.com/signin\"}}]"}}]}}"#
        )
    };
    let line = format!(
        r#"{{"time":"2026-10-14T09:09:25.4570796Z","resourceId":"/tenants/7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41/providers/Microsoft.aadiam","operationName":"{activity}","operationVersion":"1.0","category":"AuditLogs","tenantId":"7f3c2a10-4b6e-4d2a-9c1e-2f5a8b0d6e41","resultSignature":"None","durationMs":0,"callerIpAddress":"203.0.113.24","correlationId":"c-{i}","level":"Informational","properties":{{"id":"Directory_c-{i}_IDNAS_{i}","category":"UserManagement","correlationId":"c-{i}","result":"success","resultReason":"","activityDisplayName":"{activity}","activityDateTime":"2026-10-14T09:09:25.4570796+00:00","loggedByService":"Core Directory","operationType":"Update","initiatedBy":{{"user":{{"id":"e4ec67bd-4f7e-4e09-8f6d-e88e6fa53cf6","displayName":"Irvin Sayers (admin)","userPrincipalName":"irvin.sayers@contoso.com","ipAddress":"203.0.113.24"}}}},"targetResources":[{target}],"additionalDetails":[{{"key":"User-Agent","value":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36 Edg/141.0.0.0"}},{{"key":"UserType","value":"Member"}}"#
    );
    let pad = 1_320usize.saturating_sub(line.len() + 40);
    format!(
        r#"{line},{{"key":"Padding","value":"{}"}}]}}}}"#,
        "x".repeat(pad)
    )
}

fn generate(path: &Path, records: usize) -> u64 {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..records {
        writeln!(out, "{}", record(i, i % 100 == 0)).unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// The baseline: every line parsed into a `serde_json::Value`, reading the file in pieces.
fn parse(path: &Path) -> (Duration, usize) {
    use std::io::BufRead;
    let started = Instant::now();
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).unwrap());
    let mut n = 0;
    for line in reader.lines() {
        let value: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        n += usize::from(value.is_object());
    }
    (started.elapsed(), n)
}

/// Runs of each build.
const RUNS: usize = 3;

/// The `.eml` files in `mail`.
fn notices(mail: &Path) -> usize {
    std::fs::read_dir(mail)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
            })
            .count()
        })
        .unwrap_or(0)
}

struct Run {
    wall: Duration,
    user: Duration,
    system: Duration,
    max_rss_kb: i64,
}

/// `herald run --once` of `binary`, with its resource usage.
fn herald(binary: &Path, config: &Path) -> Run {
    let started = Instant::now();
    // Reaped below by `wait4`, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(binary)
        .args(["run", "--once", "--config"])
        .arg(config)
        .env("HERALD_LOG", "warn")
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, filling `usage`.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(pid, child.id() as i32);
    assert_eq!(status, 0, "herald run --once failed");
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Run {
        wall,
        user: time(usage.ru_utime),
        system: time(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
    }
}

fn main() {
    let records: usize = std::env::var("HERALD_REAL_PATH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let scratch = Scratch::new("bench-real-path");
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("events")).unwrap();
    let input = dir.join("events").join("audit.ndjson");
    let bytes = generate(&input, records);
    let starter = Command::new(support::HERALD).arg("init").output().unwrap();
    let config = dir.join("herald.toml");
    std::fs::write(&config, &starter.stdout).unwrap();

    let (parsed, objects) = parse(&input);
    assert_eq!(objects, records);
    let mb = bytes as f64 / 1e6;
    let rate = |d: Duration| mb / d.as_secs_f64();
    println!(
        "{records} records, {mb:.0} MB\n\
         baseline (serde_json::Value, line by line): {:>6.2} s  {:>6.1} MB/s",
        parsed.as_secs_f64(),
        rate(parsed),
    );
    let mut binaries = vec![("this build".to_owned(), PathBuf::from(support::HERALD))];
    if let Some(other) = std::env::var_os("HERALD_REAL_PATH_BINARY") {
        let other = PathBuf::from(other);
        binaries.push((other.display().to_string(), other));
    }
    // The disk's flushes vary from run to run: each build runs RUNS times, the builds in turn,
    // and the median run (by wall time) is reported.
    let mut runs: Vec<Vec<(Run, usize)>> = binaries.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        for ((_, binary), runs) in binaries.iter().zip(&mut runs) {
            // Each run starts from nothing: no store, no mail.
            for leftover in [
                "herald.db",
                "herald.db-wal",
                "herald.db-shm",
                "herald.db.lock",
            ] {
                let _ = std::fs::remove_file(dir.join(leftover));
            }
            let _ = std::fs::remove_dir_all(dir.join("mail"));
            let run = herald(binary, &config);
            runs.push((run, notices(&dir.join("mail"))));
        }
    }
    for ((name, _), mut runs) in binaries.into_iter().zip(runs) {
        runs.sort_by_key(|(run, _)| run.wall);
        let walls: Vec<String> = runs
            .iter()
            .map(|(run, _)| format!("{:.2}", run.wall.as_secs_f64()))
            .collect();
        let (run, notices) = &runs[runs.len() / 2];
        println!(
            "herald run --once ({name}): {:>6.2} s  {:>6.1} MB/s   {:.2}x the parse rate, \
             {notices} notices written (runs: {} s)\n  \
             user {:.2} s, system {:.2} s, peak RSS {:.0} MB",
            run.wall.as_secs_f64(),
            rate(run.wall),
            parsed.as_secs_f64() / run.wall.as_secs_f64(),
            walls.join(", "),
            run.user.as_secs_f64(),
            run.system.as_secs_f64(),
            run.max_rss_kb as f64 / 1024.0,
        );
    }
}
