//! The file source against the real `herald` binary: follow mode and settling, rotation,
//! truncation and inode reuse, bounded memory, include/exclude and `.gz`, a missing path.
//! Notices go to the file channel (`mail/*.eml`), so each one is a file to count.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::instance::Instance;
use support::{Scratch, fixture, herald, text};

const LIMIT: Duration = Duration::from_secs(300);

/// A `Reset user password` record for `user` with event id `id`, as one line without newline.
fn reset(id: &str, user: &str) -> String {
    let line = std::fs::read_to_string(fixture("quirks.ndjson")).unwrap();
    line.lines()
        .next()
        .unwrap()
        .replace(
            "Directory_90534271-8447-49dc-9824-f05bb57dd62c_3LUK0_225698168",
            id,
        )
        .replace("adele.vance@contoso.com", &format!("{user}@contoso.com"))
}

/// A record no rule selects.
fn noise(id: &str) -> String {
    reset(id, "nobody").replace("Reset user password", "Update user")
}

/// The configuration after `[[source]]`'s first lines: a file channel and a rule.
fn config(source: &str) -> String {
    format!(
        r#"
[store]
url = "sqlite://herald.db"

[[source]]
kind = "file"
name = "events"
{source}

[channel.email]
kind = "file"
from = "Security <security@contoso.com>"
dir = "mail"

[[rule]]
name = "password-reset"
activities = ["Reset user password"]
recipients = ["target"]
"#
    )
}

fn write_config(dir: &Path, source: &str) -> PathBuf {
    let path = dir.join("herald.toml");
    std::fs::write(&path, config(source)).unwrap();
    path
}

fn run_once(config: &Path) -> std::process::Output {
    let out = herald(
        &["run", "--once", "--config", config.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    out
}

fn mails(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("mail"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn dead_letters(config: &Path) -> String {
    text(
        &herald(
            &["dead-letters", "list", "--config", config.to_str().unwrap()],
            LIMIT,
        )
        .stdout,
    )
}

/// Waits (up to a minute) for `n` notices.
fn wait_for_mails(dir: &Path, n: usize, herald: &Instance) {
    let started = Instant::now();
    while mails(dir) < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} of {n} notices; log:\n{}",
            mails(dir),
            herald.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_followed_files_unterminated_last_record_is_read_once_it_has_settled() {
    let dir = Scratch::new("file-unterminated");
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(dir.path().join("in/audit.ndjson"), reset("id-1", "u1")).unwrap();
    let herald = Instance::start(
        dir.path(),
        &config("path = \"in\"\nfollow = true\npoll_interval = \"100ms\"\nsettle = \"1s\""),
    );
    wait_for_mails(dir.path(), 1, &herald);
    assert_eq!(dead_letters(&herald.config), "");
}

#[test]
fn once_on_a_followed_source_leaves_a_half_written_document_for_next_time() {
    let dir = Scratch::new("file-two-writes");
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let config = write_config(dir.path(), "path = \"in\"\nfollow = true\nsettle = \"1h\"");
    let envelope = std::fs::read_to_string(fixture("envelope-reset-password.json")).unwrap();
    let half = envelope.len() / 2;
    let cut = envelope[..half].rfind('\n').unwrap() + 1;
    let file = dir.path().join("in/envelope.json");
    std::fs::write(&file, &envelope[..cut]).unwrap();
    run_once(&config);
    assert_eq!(
        dead_letters(&config),
        "",
        "the first write is not cut into dead letters"
    );
    assert_eq!(mails(dir.path()), 0);

    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    f.write_all(&envelope.as_bytes()[cut..]).unwrap();
    drop(f);
    run_once(&config);
    assert_eq!(dead_letters(&config), "");
    assert_eq!(mails(dir.path()), 1, "the whole envelope is one record");
}

#[test]
fn rotation_by_rename_loses_nothing_appended_to_the_old_file() {
    let dir = Scratch::new("file-rotation");
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let log = dir.path().join("in/audit.log");
    std::fs::write(&log, format!("{}\n", reset("id-1", "u1"))).unwrap();
    let herald = Instance::start(
        dir.path(),
        &config(
            "path = \"in/audit.log\"\nfollow = true\npoll_interval = \"100ms\"\nsettle = \"1s\"",
        ),
    );
    wait_for_mails(dir.path(), 1, &herald);

    // While Herald is stopped, the writer appends and logrotate (create mode) renames the file
    // and creates a new one.
    herald.signal("STOP");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f, "{}", reset("id-2", "u2")).unwrap();
    drop(f);
    std::fs::rename(&log, dir.path().join("in/audit.log.1")).unwrap();
    std::fs::write(&log, format!("{}\n", reset("id-3", "u3"))).unwrap();
    herald.signal("CONT");

    wait_for_mails(dir.path(), 3, &herald);
    assert_eq!(dead_letters(&herald.config), "");
}

#[test]
fn a_file_rotated_while_herald_was_down_is_read_to_its_end_from_beside_it() {
    let dir = Scratch::new("file-rotation-down");
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let log = dir.path().join("in/audit.log");
    std::fs::write(&log, format!("{}\n", reset("id-1", "u1"))).unwrap();
    let mut herald = Instance::start(
        dir.path(),
        &config(
            "path = \"in/audit.log\"\nfollow = true\npoll_interval = \"100ms\"\nsettle = \"1s\"",
        ),
    );
    wait_for_mails(dir.path(), 1, &herald);
    herald.kill();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f, "{}", reset("id-2", "u2")).unwrap();
    drop(f);
    std::fs::rename(&log, dir.path().join("in/audit.log.1")).unwrap();
    std::fs::write(&log, format!("{}\n", reset("id-3", "u3"))).unwrap();
    herald.restart();
    wait_for_mails(dir.path(), 3, &herald);
    assert_eq!(dead_letters(&herald.config), "");
}

#[test]
fn a_file_rewritten_in_place_is_read_from_its_start() {
    let dir = Scratch::new("file-rewritten");
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let config = write_config(dir.path(), "path = \"in\"");
    let file = dir.path().join("in/audit.ndjson");
    let first = format!("{}\n", reset("id-1", "u1"));
    std::fs::write(&file, &first).unwrap();
    run_once(&config);
    assert_eq!(mails(dir.path()), 1);

    // Truncated and regrown (the same inode), longer than before: not read from the old offset.
    let second = format!("{}\n{}\n", reset("id-2", "u2"), reset("id-3", "u3"));
    assert_ne!(first.as_bytes()[..1024], second.as_bytes()[..1024]);
    std::fs::write(&file, &second).unwrap();
    run_once(&config);
    assert_eq!(dead_letters(&config), "", "nothing is read mid-record");
    assert_eq!(mails(dir.path()), 3);
}

#[test]
fn a_large_file_is_read_in_bounded_memory() {
    let dir = Scratch::new("file-memory");
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let config = write_config(dir.path(), "path = \"in\"");
    // About 300 MB of records no rule selects, and one at the end that one does.
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("in/big.ndjson")).unwrap());
    let template = noise("NOISE");
    let mut written = 0;
    let mut i = 0;
    while written < 300 << 20 {
        let line = template.replace("NOISE", &format!("noise-{i}"));
        writeln!(f, "{line}").unwrap();
        written += line.len() + 1;
        i += 1;
    }
    writeln!(f, "{}", reset("id-last", "u1")).unwrap();
    drop(f);

    run_once(&config);
    assert_eq!(mails(dir.path()), 1, "the whole file was read");
    // SAFETY: getrusage only writes the struct it is given.
    let peak_kib = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss
    };
    eprintln!("peak RSS of the herald processes: {peak_kib} KiB");
    assert!(
        peak_kib < 150 * 1024,
        "peak RSS of the herald processes: {peak_kib} KiB"
    );
}

#[test]
fn a_directory_reads_only_its_included_files_and_gz_decompressed_once() {
    let dir = Scratch::new("file-select");
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("README.md"),
        "# Audit drop folder\n\nPut files here.\n",
    )
    .unwrap();
    std::fs::write(input.join("rules.yaml"), "rules:\n  - reset\n").unwrap();
    std::fs::write(
        input.join("skip-old.ndjson"),
        format!("{}\n", reset("id-9", "u9")),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(input.join("archive.ndjson.gz")).unwrap(),
        flate2::Compression::default(),
    );
    writeln!(gz, "{}\n{}", reset("id-1", "u1"), reset("id-2", "u2")).unwrap();
    gz.finish().unwrap();
    let config = write_config(dir.path(), "path = \"in\"\nexclude = [\"*-old.ndjson\"]");

    run_once(&config);
    assert_eq!(
        dead_letters(&config),
        "",
        "a README is not a stream of dead letters"
    );
    assert_eq!(mails(dir.path()), 2);
    let again = run_once(&config);
    assert!(
        !text(&again.stderr).contains("committed"),
        "a .gz file is not read twice: {}",
        text(&again.stderr)
    );
}

#[test]
fn check_reports_a_path_that_does_not_exist() {
    let dir = Scratch::new("file-missing");
    let config = write_config(dir.path(), "path = \"/x/evnets\"");
    let out = herald(&["check", "--config", config.to_str().unwrap()], LIMIT);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains(": source[0] \"events\": path: /x/evnets does not exist"),
        "{err}"
    );

    // Waiting for it is allowed.
    let config = write_config(dir.path(), "path = \"drop\"\ncreate = true");
    let out = herald(&["check", "--config", config.to_str().unwrap()], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A file that cannot be read is named in the log with the system's reason, and the others are
/// read all the same.
#[test]
fn a_file_that_cannot_be_read_is_logged_with_the_os_error() {
    let dir = Scratch::new("file-unreadable");
    let events = dir.path().join("events");
    std::fs::create_dir_all(&events).unwrap();
    std::fs::write(
        events.join("good.json"),
        reset("Directory_readable_1", "alice"),
    )
    .unwrap();
    // A symbolic link to nothing: listed in the folder, but opening it fails (as root, which
    // these tests may run as, a permission bit would not stop the read).
    std::os::unix::fs::symlink(dir.path().join("gone.json"), events.join("broken.json")).unwrap();
    let config = write_config(dir.path(), "path = \"events\"");
    let out = run_once(&config);
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("cannot read the file"))
        .unwrap_or_else(|| panic!("no line names the unreadable file:\n{stderr}"));
    assert!(
        line.contains("broken.json") && line.contains("No such file or directory (os error 2)"),
        "{line}"
    );
    assert_eq!(mails(dir.path()), 1, "the readable file was read");
}
