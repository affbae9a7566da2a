//! The dry run end to end, through the real `herald` binary: check, test, preview, init.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/entra").join(name)
}

fn starter() -> PathBuf {
    root().join("examples/herald.toml")
}

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-dry-run-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn herald(args: &[&str]) -> Output {
    Command::new(HERALD).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config with the given rules, an email channel and a `soc` group, written into `dir`.
fn config_with(dir: &Path, rules: &str) -> PathBuf {
    let path = dir.join("herald.toml");
    let body = format!(
        "[channel.email]\nkind = \"file\"\nfrom = \"Contoso Security <security-notices@contoso.com>\"\ndir = \"mail\"\n\n[groups]\nsoc = [\"soc1@contoso.com\", \"soc2@contoso.com\"]\n\n{rules}\n[[source]]\nkind = \"file\"\nname = \"in\"\npath = \"in\"\ncreate = true\n"
    );
    std::fs::write(&path, body).unwrap();
    path
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn check_accepts_the_starter_config() {
    let out = herald(&["check", "--config", starter().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid"));
}

/// `herald init > herald.toml` in an empty folder gives a configuration that checks and runs
/// as printed: the events folder it reads is created.
#[test]
fn the_starter_config_runs_as_printed_from_a_fresh_folder() {
    let dir = scratch("init-fresh");
    let init = herald(&["init"]);
    assert_eq!(init.status.code(), Some(0));
    let config = dir.join("herald.toml");
    std::fs::write(&config, &init.stdout).unwrap();
    let check = herald(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let run = herald(&["run", "--once", "--config", config.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(dir.join("events").is_dir(), "the events folder is created");
}

#[test]
fn check_accepts_the_microsoft_365_example() {
    let example = root().join("examples/microsoft365.toml");
    // `check` resolves every secret the example names.
    let out = Command::new(HERALD)
        .args(["check", "--config", example.to_str().unwrap()])
        .env("GRAPH_CLIENT_SECRET", "s3cr3t")
        .env("SOAR_WEBHOOK_URL", "https://soar.example/hook")
        .env("SOAR_WEBHOOK_SECRET", "whsec")
        .env("TEAMS_WEBHOOK_URL", "https://teams.example/hook")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("valid (3 rules, 3 channels, 1 groups)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_names_file_line_and_key_and_exits_2() {
    let dir = scratch("check-errors");
    let cases = [
        (
            "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\nrecipiants = []\n",
            ":12:",
            "recipiants",
        ),
        (
            "\n[[rule]]\nname = \"r\"\nrecipients = [\"group:nope\"]\n",
            ":12:",
            "recipients[0]: no group \"nope\"",
        ),
        (
            "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\nchannels = [\"pager\"]\n",
            ":12:",
            "channels[0]: no [channel.pager]",
        ),
        (
            "[[rule]]\nname = \"r\"\nrecipients = [\"not an address\"]\n",
            ":11:",
            "recipients[0]",
        ),
        (
            // Found when the templates load, after the file is parsed: still located at the
            // `template` key, not at the rule's table.
            "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\ntemplate = \"missing/notice.html\"\n",
            ":12:",
            "template: cannot read",
        ),
    ];
    for (rules, line, key) in cases {
        let config = config_with(&dir, rules);
        let out = herald(&["check", "--config", config.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{rules}: {err}");
        assert!(
            err.contains(&format!("{}{line}", config.display())),
            "{rules}: {err}"
        );
        assert!(err.contains(key), "{rules}: {err}");
    }
}

#[test]
fn check_renders_custom_templates_and_reports_their_errors() {
    let dir = scratch("check-template");
    std::fs::write(dir.join("notice.html"), "<p>{{ event.activity }}</p>").unwrap();
    std::fs::write(dir.join("notice.txt"), "{{ event.activity }}").unwrap();
    let config = config_with(
        &dir,
        "[[rule]]\nname = \"r\"\nrecipients = [\"target\"]\ntemplate = \"notice.html\"\n",
    );
    let out = herald(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    std::fs::write(dir.join("notice.html"), "<p>{{ event.activity </p>").unwrap();
    let out = herald(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("notice.html"),
        "{}",
        text(&out.stderr)
    );

    // A filter that fails at render time is caught by the sample render.
    std::fs::write(
        dir.join("notice.html"),
        "<p>{{ event.time | datetimeformat(tz=\"Nowhere/Atlantis\") }}</p>",
    )
    .unwrap();
    let out = herald(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("rule[0] \"r\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn reset_user_password_in_an_envelope_yields_one_notice_to_the_target() {
    // The seed's flow: Event Hubs envelope → "Reset user password" → mail to the target's UPN.
    let dir = scratch("seed");
    let mail = dir.join("mail");
    let out = herald(&[
        "test",
        "--config",
        starter().to_str().unwrap(),
        "--format",
        "json",
        "--render",
        mail.to_str().unwrap(),
        fixture("envelope-reset-password.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let n = lines[0].as_object().unwrap();
    let mut keys: Vec<&str> = n.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "activity",
            "channel",
            "event_id",
            "key",
            "recipient",
            "rule",
            "subject"
        ]
    );
    assert_eq!(n["activity"], "Reset user password");
    assert_eq!(n["rule"], "password-reset");
    assert_eq!(n["channel"], "email");
    assert_eq!(n["recipient"], "adele.vance@contoso.com");
    assert_eq!(n["subject"], "Your password was reset by an administrator");

    let key = n["key"].as_str().unwrap();
    let eml = text(&std::fs::read(mail.join(format!("{key}.eml"))).unwrap());
    for header in [
        "From: \"Contoso Security\" <security-notices@contoso.com>\r\n",
        "To: adele.vance@contoso.com\r\n",
        "Subject: Your password was reset by an administrator\r\n",
        &format!("Message-ID: <{key}@contoso.com>\r\n"),
        "Importance: high\r\n",
        "X-Priority: 1\r\n",
        "Content-Type: multipart/alternative;",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Type: text/html; charset=utf-8",
    ] {
        assert!(eml.contains(header), "missing {header:?} in\n{eml}");
    }
    let stderr = text(&out.stderr);
    assert!(stderr.contains("records decoded: 1,"), "{stderr}");
    assert!(stderr.contains("notifications: 1"), "{stderr}");
}

#[test]
fn preview_prints_the_seed_message_in_html() {
    let out = herald(&[
        "preview",
        "--config",
        starter().to_str().unwrap(),
        "--rule",
        "password-reset",
        fixture("envelope-reset-password.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let html = text(&out.stdout);
    assert!(html.contains("<html"));
    assert!(html.contains("Your password was reset by an administrator"));
    // Entra's name for the activity is in the technical details, after everything else.
    let details = html.find("Technical details").unwrap();
    assert!(html.find("Reset user password").unwrap() > details);
    assert!(html.contains("no action is required"));
    assert!(html.contains("Irvin Sayers (admin) (irvin.sayers@contoso.com)"));
    assert!(html.contains("203.0.113.24"));
    assert!(html.contains("Please do not reply"));
    assert!(html.contains("https://security.contoso.com/report"));
    // CSS is inlined for clients that drop <style>.
    assert!(!html.contains("<style"));
    assert!(html.contains("style=\""));

    let out = herald(&[
        "preview",
        "--config",
        starter().to_str().unwrap(),
        "--rule",
        "nope",
        fixture("envelope-reset-password.json").to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("password-reset"),
        "lists the rules"
    );
}

#[test]
fn the_same_event_twice_is_one_notification() {
    let file = fixture("envelope-reset-password.json");
    let out = herald(&[
        "test",
        "--config",
        starter().to_str().unwrap(),
        "--format",
        "json",
        file.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(json_lines(&out).len(), 1);
    assert!(
        text(&out.stderr).contains("1 duplicates dropped"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn dead_letters_are_listed_with_position_and_reason_and_the_rest_goes_on() {
    let file = fixture("dead-letters.ndjson");
    let out = herald(&[
        "test",
        "--config",
        starter().to_str().unwrap(),
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "dead letters do not fail the run"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("records decoded: 2,"), "{stderr}");
    assert!(stderr.contains("dead letters: 5"), "{stderr}");
    let name = file.display().to_string();
    for (line, reason) in [
        (2, "not a JSON object"),
        (3, "missing `properties.id`"),
        (4, "missing `operationName`"),
        (5, "is not a timestamp"),
        (6, "JSON"),
    ] {
        let prefix = format!("dead letter: {name}: line {line}: ");
        let entry = stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no dead letter at line {line}:\n{stderr}"));
        assert!(entry.contains(reason), "{entry}");
    }
    let rules: Vec<_> = json_lines(&out)
        .iter()
        .map(|n| n["rule"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rules, ["password-change", "password-reset"]);
}

#[test]
fn other_log_categories_are_skipped_and_counted() {
    let out = herald(&[
        "test",
        "--config",
        starter().to_str().unwrap(),
        fixture("envelope-mixed-categories.json").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("records decoded: 1,"), "{stderr}");
    assert!(
        stderr.contains("skipped: 5 (MicrosoftGraphActivityLogs 1, NonInteractiveUserSignInLogs 1, ServicePrincipalSignInLogs 1, SignInLogs 1, UserRiskEvents 1)"),
        "{stderr}"
    );
    assert!(stderr.contains("dead letters: 0"), "{stderr}");
}

#[test]
fn standard_input_and_unreadable_inputs() {
    let mut child = Command::new(HERALD)
        .args([
            "test",
            "--config",
            starter().to_str().unwrap(),
            "--format",
            "json",
            "-",
            "/nonexistent/records.json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(fixture("envelope-reset-password.json")).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(json_lines(&out).len(), 1, "stdin was read");
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable input fails the run"
    );
    assert!(text(&out.stderr).contains("/nonexistent/records.json: cannot read"));
}

#[test]
fn init_prints_the_starter_config() {
    let out = herald(&["init"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, std::fs::read(starter()).unwrap());
}

#[test]
fn a_record_with_two_user_targets_and_a_device_tells_the_two_users() {
    let dir = scratch("two-targets");
    let config = config_with(
        &dir,
        "[[rule]]\nname = \"disabled\"\nactivities = [\"Disable account\"]\nrecipients = [\"target\"]\n",
    );
    let out = herald(&[
        "test",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
        fixture("two-user-targets.json").to_str().unwrap(),
    ]);
    let mut recipients: Vec<_> = json_lines(&out)
        .iter()
        .map(|n| n["recipient"].as_str().unwrap().to_owned())
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["adele.vance@contoso.com", "megan.bowen@contoso.com"]
    );
}

#[test]
fn targets_without_an_address_tell_nobody_and_say_so() {
    let dir = scratch("no-address");
    let config = config_with(
        &dir,
        "[[rule]]\nname = \"devices\"\nactivities = [\"Update device\", \"Reset user password\"]\nrecipients = [\"target\"]\n",
    );
    for file in ["device-target.json", "quirks.ndjson"] {
        let out = herald(&[
            "test",
            "--config",
            config.to_str().unwrap(),
            "--format",
            "json",
            fixture(file).to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("no recipient: rule \"devices\""),
            "{file}: {stderr}"
        );
        for n in json_lines(&out) {
            assert_eq!(n["recipient"], "adele.vance@contoso.com", "{file}");
        }
    }
}

#[test]
fn initiator_self_other_and_initiator_recipients() {
    let dir = scratch("initiator");
    let config = config_with(
        &dir,
        r#"
[[rule]]
name = "self"
initiator = "self"
recipients = ["target"]

[[rule]]
name = "other"
initiator = "other"
recipients = ["target"]

[[rule]]
name = "tell-initiator"
activities = ["Reset user password"]
recipients = ["initiator", "group:soc", "audit@contoso.com"]
"#,
    );
    let run = |file: &str| {
        let out = herald(&[
            "test",
            "--config",
            config.to_str().unwrap(),
            "--format",
            "json",
            fixture(file).to_str().unwrap(),
        ]);
        json_lines(&out)
            .iter()
            .map(|n| {
                format!(
                    "{} {}",
                    n["rule"].as_str().unwrap(),
                    n["recipient"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run("initiator-is-target.json"),
        ["self adele.vance@contoso.com"]
    );
    assert_eq!(
        run("envelope-reset-password.json"),
        [
            "other adele.vance@contoso.com",
            "tell-initiator irvin.sayers@contoso.com",
            "tell-initiator soc1@contoso.com",
            "tell-initiator soc2@contoso.com",
            "tell-initiator audit@contoso.com",
        ]
    );
}

/// A rendered `.eml` as text a reader sees.
fn readable(eml: &[u8]) -> String {
    support::decode_qp(eml)
}

/// `herald test --config CONFIG --format json INPUT`, rendering every message into `render`
/// when given.
fn dry_run(config: &Path, input: &Path, render: Option<&Path>) -> Output {
    let mut args = vec![
        "test",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ];
    if let Some(dir) = render {
        args.extend(["--render", dir.to_str().unwrap()]);
    }
    args.push(input.to_str().unwrap());
    let out = herald(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

/// The dry run of `input` under `config`, each rendered message (written into `out_dir`) as a
/// reader sees it, by recipient.
fn rendered_by(config: &Path, input: &Path, out_dir: &Path) -> Vec<(String, String)> {
    let out = dry_run(config, input, Some(out_dir));
    json_lines(&out)
        .iter()
        .map(|n| {
            let key = n["key"].as_str().unwrap();
            let eml = std::fs::read(out_dir.join(format!("{key}.eml"))).unwrap();
            (n["recipient"].as_str().unwrap().to_owned(), readable(&eml))
        })
        .collect()
}

/// [`rendered_by`] of a fixture under `rules` (with the `soc` group and an email channel).
fn rendered(test: &str, rules: &str, fixture_name: &str) -> Vec<(String, String)> {
    let dir = scratch(test);
    rendered_by(
        &config_with(&dir, rules),
        &fixture(fixture_name),
        &dir.join("rendered"),
    )
}

#[test]
fn a_copy_to_a_group_is_not_you_and_says_the_owner_was_told_only_when_they_were() {
    // An administrator resets Adele's password; the SOC gets a copy.
    let told = rendered(
        "owner-told",
        "[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\", \"group:soc\"]\n",
        "envelope-reset-password.json",
    );
    assert_eq!(told.len(), 3, "the owner and two SOC addresses");
    for (recipient, message) in &told {
        assert!(
            !message.contains("(you)"),
            "{recipient} is not the actor:\n{message}"
        );
        if recipient.starts_with("soc") {
            assert!(
                message.contains("The owner of the account was told separately"),
                "{message}"
            );
        }
    }
    // The same event, and only the SOC is told: the copy must not claim otherwise.
    let not_told = rendered(
        "owner-not-told",
        "[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"group:soc\"]\n",
        "envelope-reset-password.json",
    );
    assert_eq!(not_told.len(), 2);
    for (recipient, message) in &not_told {
        assert!(
            !message.contains("told separately"),
            "{recipient}:\n{message}"
        );
        assert!(
            message.contains("Herald did not notify the owner of the account about this"),
            "{message}"
        );
        assert!(!message.contains("(you)"), "{message}");
    }
    // Adele registering a method herself is "you" to Adele, and never to the SOC's copy.
    let own = rendered(
        "actor-is-you",
        "[[rule]]\nname = \"self\"\nactivities = [\"User registered security info\"]\nrecipients = [\"target\", \"group:soc\"]\n",
        "initiator-is-target.json",
    );
    assert_eq!(own.len(), 3);
    for (recipient, message) in &own {
        let owner = recipient.starts_with("adele");
        assert_eq!(message.contains("(you)"), owner, "{recipient}:\n{message}");
    }
}

#[test]
fn a_missing_value_in_a_subject_prints_nothing_rather_than_none() {
    let notices = rendered(
        "subject-none",
        "[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\nsubject = \"Password reset: {{ target.no_such_field }} {{ event.no_such_field }}{{ none }}\"\n",
        "envelope-reset-password.json",
    );
    assert_eq!(notices.len(), 1);
    let message = &notices[0].1;
    let subject = message
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap_or_else(|| panic!("no subject:\n{message}"));
    assert_eq!(subject.trim_end(), "Subject: Password reset:");
    for word in ["none", "None", "undefined"] {
        assert!(!subject.contains(word), "{subject}");
    }
}

#[test]
fn a_failed_reset_says_it_was_tried_and_did_not_succeed() {
    // The microsoft365 example's rules once had no `results`: a failed reset told the user
    // their password had been reset.
    let dir = scratch("failed-reset");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("envelope-reset-password.json")).unwrap())
            .unwrap();
    record["records"][0]["properties"]["result"] = "failure".into();
    record["records"][0]["properties"]["resultReason"] =
        "The password does not meet the policy".into();
    let input = dir.join("failed.json");
    std::fs::write(&input, serde_json::to_vec(&record).unwrap()).unwrap();
    let config = config_with(
        &dir,
        "[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\n",
    );
    let notices = rendered_by(&config, &input, &dir.join("rendered"));
    assert_eq!(notices.len(), 1);
    let message = &notices[0].1;
    assert!(
        message.contains("Someone tried to reset your password — it did not succeed"),
        "{message}"
    );
    assert!(!message.contains("Your password was reset"), "{message}");

    // The example's own user rules select only what took effect.
    let example = root().join("examples/microsoft365.toml");
    let example = std::fs::read_to_string(example).unwrap();
    for rule in ["password-reset", "new-sign-in-method"] {
        let at = example.find(&format!("name = \"{rule}\"")).unwrap();
        let block = &example[at..example[at..].find("\n\n").map_or(example.len(), |e| at + e)];
        assert!(
            block.contains("results = [\"success\"]"),
            "{rule}:\n{block}"
        );
    }
}

#[test]
fn authenticator_upkeep_tells_nobody_and_says_why_but_a_new_device_does() {
    let drift = fixture("authenticator-clock-drift.json");
    let out = dry_run(&starter(), &drift, None);
    assert!(json_lines(&out).is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("routine: only OathTokenTimeDrift changed"),
        "{}",
        text(&out.stderr)
    );

    // The same record with the device renamed is a change of a sign-in method: told.
    let dir = scratch("new-device");
    let renamed = std::fs::read_to_string(&drift)
        .unwrap()
        .replacen("SM-A546B", "Pixel 9", 1);
    let input = dir.join("renamed.json");
    std::fs::write(&input, renamed).unwrap();
    let out = dry_run(&starter(), &input, None);
    let notices = json_lines(&out);
    assert_eq!(notices.len(), 1, "{}", text(&out.stderr));
    assert_eq!(notices[0]["recipient"], "adele.vance@contoso.com");

    // It says so in plain words and shows no push token, object id or raw JSON.
    let shown = rendered_by(&starter(), &input, &dir.join("rendered"));
    let message = &shown[0].1;
    assert!(
        // (The old value is the one renamed.)
        message.contains(
            "Microsoft Authenticator on Pixel 9 was replaced by Microsoft Authenticator on SM-A546B"
        ),
        "{message}"
    );
    for hidden in [
        "fcm-push-token-example-0001",
        "9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b",
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "ad7140d9-2cc2-4134-8bae-6b90ba3dede2",
        "SecuredKeyId",
        "[{",
        "\"DeviceName\"",
    ] {
        assert!(!message.contains(hidden), "{hidden} shown:\n{message}");
    }
}

/// The fixture's record of `activity`, alone in a file of `dir`.
fn record_of(dir: &Path, activity: &str) -> PathBuf {
    let all = std::fs::read_to_string(fixture("activities.ndjson")).unwrap();
    let line = all
        .lines()
        .find(|l| l.contains(&format!("\"activityDisplayName\":\"{activity}\"")))
        .unwrap();
    let path = dir.join("record.json");
    std::fs::write(&path, line).unwrap();
    path
}

#[test]
fn a_role_assignment_names_the_role_for_the_owner_and_the_security_team() {
    let dir = scratch("role");
    let input = record_of(&dir, "Add member to role");
    let notices = rendered_by(&starter(), &input, &dir.join("rendered"));
    assert_eq!(notices.len(), 2, "the owner and the security team");
    let (_, owner) = notices
        .iter()
        .find(|(r, _)| r.starts_with("megan"))
        .unwrap();
    let (_, soc) = notices
        .iter()
        .find(|(r, _)| r.starts_with("security@"))
        .unwrap();
    assert!(
        owner.contains("You were given the Global Administrator role"),
        "{owner}"
    );
    assert!(
        owner.contains("You now have the Global Administrator role"),
        "{owner}"
    );
    assert!(
        owner.contains("An administrator role lets an account change settings"),
        "{owner}"
    );
    assert!(
        soc.contains("Subject: Megan Bowen was given the Global Administrator role"),
        "{soc}"
    );
    assert!(
        soc.contains("Megan Bowen now has the Global Administrator role"),
        "{soc}"
    );
    assert!(
        soc.contains("The owner of the account was told separately"),
        "{soc}"
    );
    assert!(
        !soc.contains("(you)") && !soc.contains("You now have"),
        "{soc}"
    );
    for message in [owner, soc] {
        for hidden in [
            "Role.ObjectID",
            "Role.TemplateId",
            "Role.WellKnownObjectName",
            "CompanyAdministrator",
            "61bea6fc-1c65-4fd8-b733-a5be55ecf37d",
            "7b48b9a9-ceae-4290-a647-9f2fc4a7ce3a",
        ] {
            assert!(!message.contains(hidden), "{hidden} shown:\n{message}");
        }
        // Entra's activity name only in the technical details.
        let (before, after) = message.split_once("Technical details").unwrap();
        assert!(!before.contains("Add member to role"), "{message}");
        assert!(after.contains("Add member to role"), "{message}");
        assert!(
            after.contains("064cd234-c39e-4e31-9b65-24eb1ab46a32"),
            "correlation id"
        );
        assert!(after.contains("2026-10-15 10:45:27"), "the time in UTC");
    }
}

#[test]
fn a_new_authenticator_says_which_app_on_which_device() {
    let dir = scratch("new-authenticator");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("authenticator-clock-drift.json")).unwrap())
            .unwrap();
    let properties = &mut record["targetResources"][0]["modifiedProperties"];
    properties[0]["oldValue"] = serde_json::Value::Null;
    let input = dir.join("registered.json");
    std::fs::write(&input, serde_json::to_vec(&record).unwrap()).unwrap();
    let notices = rendered_by(&starter(), &input, &dir.join("rendered"));
    assert_eq!(notices.len(), 1);
    let message = &notices[0].1;
    assert!(
        message.contains("Microsoft Authenticator on SM-A546B was added as a sign-in method"),
        "{message}"
    );
    assert!(
        !message.contains("Other changes"),
        "nothing left unexplained:\n{message}"
    );
    assert!(
        !message.contains("fcm-push-token-example-0001"),
        "{message}"
    );
}

#[test]
fn preview_reads_standard_input_and_prints_the_part_asked_for() {
    let record = std::fs::read(fixture("envelope-reset-password.json")).unwrap();
    let preview = |part: &str| {
        let mut child = Command::new(HERALD)
            .args(["preview", "--config", starter().to_str().unwrap()])
            .args(["--rule", "password-reset", "--part", part, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&record).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = preview("text");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body = text(&out.stdout);
    assert!(
        body.starts_with("Your password was reset by an administrator\n"),
        "{body}"
    );
    assert!(!body.contains("<html"), "{body}");
    assert!(text(&out.stderr).contains("Subject: Your password was reset by an administrator"));
    let out = preview("subject");
    assert_eq!(
        text(&out.stdout),
        "Your password was reset by an administrator\n"
    );
}

#[test]
fn a_logo_file_travels_inline_with_the_mail() {
    let dir = scratch("logo");
    // A PNG by its signature (Herald checks the content, not the name).
    let png = [
        b"\x89PNG\r\n\x1a\n".as_slice(),
        b"\0\0\0\rIHDR-gallery-logo",
    ]
    .concat();
    std::fs::write(dir.join("logo.png"), &png).unwrap();
    let config = config_with(
        &dir,
        "[branding]\norganization = \"Contoso\"\nlogo_file = \"logo.png\"\n\n[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\"]\n",
    );
    let out_dir = dir.join("rendered");
    let out = dry_run(
        &config,
        &fixture("envelope-reset-password.json"),
        Some(&out_dir),
    );
    let key = json_lines(&out)[0]["key"].as_str().unwrap().to_owned();
    let eml = readable(&std::fs::read(out_dir.join(format!("{key}.eml"))).unwrap());
    for part in [
        "Content-Type: multipart/related;",
        "Content-ID: <logo@herald>",
        "Content-Disposition: inline; filename=\"logo.png\"",
        "Content-Type: image/png",
        "src=\"cid:logo@herald\"",
    ] {
        assert!(eml.contains(part), "missing {part:?} in\n{eml}");
    }

    // Anything but an image is refused at load, naming the key.
    std::fs::write(dir.join("logo.png"), b"<svg onload=alert(1)>").unwrap();
    let out = herald(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("branding.logo_file"), "{stderr}");
    assert!(stderr.contains("not a PNG, JPEG or GIF"), "{stderr}");
}

#[test]
fn one_registration_is_one_notice_to_the_user() {
    // Registering Microsoft Authenticator: Entra's "User registered security info" and the
    // "Update user" of the same change, one correlation id.
    let dir = scratch("one-action");
    let registered = record_of(&dir, "User registered security info");
    let registered: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(registered).unwrap()).unwrap();
    let correlation = registered["properties"]["correlationId"].as_str().unwrap();
    // The Update user of the same change, in the same envelope format and tenant.
    let drift: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("authenticator-clock-drift.json")).unwrap())
            .unwrap();
    let mut properties = drift["targetResources"][0]["modifiedProperties"].clone();
    properties[0]["oldValue"] = serde_json::Value::Null;
    let mut update = registered.clone();
    update["operationName"] = "Update user".into();
    let p = &mut update["properties"];
    p["id"] = "Directory_4ef83eac-update-user".into();
    p["activityDisplayName"] = "Update user".into();
    p["loggedByService"] = "Core Directory".into();
    p["operationType"] = "Update".into();
    p["targetResources"][0]["type"] = "User".into();
    p["targetResources"][0]["modifiedProperties"] = properties;
    let input = dir.join("one-action.ndjson");
    std::fs::write(&input, format!("{registered}\n{update}\n")).unwrap();
    let out = dry_run(&starter(), &input, None);
    let notices = json_lines(&out);
    assert_eq!(
        notices.len(),
        1,
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(notices[0]["rule"], "sign-in-method-added");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "told nobody: rule \"mfa-settings-updated\" selected event \"Directory_4ef83eac-update-user\", but once per action: adele.vance@contoso.com was already told about correlation id {correlation}"
        )),
        "{stderr}"
    );

    // Without a shared correlation id they are two actions, and two notices.
    update["properties"]["correlationId"] = "0f1e2d3c-4b5a-4697-8877-665544332211".into();
    std::fs::write(&input, format!("{registered}\n{update}\n")).unwrap();
    assert_eq!(json_lines(&dry_run(&starter(), &input, None)).len(), 2);
}

/// Every fixture record, rendered by a rule that tells the owner and a group about anything:
/// no notice shows a raw JSON value, `None`/`null`, a push token, or an object id outside its
/// technical details (CI runs the same over the public samples in `../shared/data`).
#[test]
fn no_fixture_renders_raw_json_or_an_object_id() {
    let dir = scratch("clean-fixtures");
    let config = config_with(
        &dir,
        "[[rule]]\nname = \"everything\"\nrecipients = [\"target\", \"group:soc\"]\n",
    );
    let guid = |text: &str| {
        text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
            .find(|w| {
                let groups: Vec<&str> = w.split('-').collect();
                groups.len() == 5
                    && groups
                        .iter()
                        .zip([8, 4, 4, 4, 12])
                        .all(|(g, n)| g.len() == n)
            })
            .map(str::to_owned)
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("tests/fixtures/entra")).unwrap() {
        let input = entry.unwrap().path();
        let out_dir = dir.join(input.file_stem().unwrap());
        let mut args = vec![
            "test",
            "--config",
            config.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend([
            "--render",
            out_dir.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        let out = herald(&args);
        for n in json_lines(&out) {
            let key = n["key"].as_str().unwrap();
            let message = readable(&std::fs::read(out_dir.join(format!("{key}.eml"))).unwrap());
            // Each part (text, HTML) up to its technical details, which carry the correlation
            // id and the key for the help desk.
            for part in message.split("Content-Type: text/").skip(1) {
                let shown = part.split("Technical details").next().unwrap();
                let shown = shown.split_once("\r\n\r\n").map_or(shown, |(_, b)| b);
                for bad in [
                    "{\"",
                    "[{",
                    "\\\"",
                    "None",
                    "null",
                    "undefined",
                    "DeviceToken",
                    "fcm-push-token",
                ] {
                    assert!(
                        !shown.contains(bad),
                        "{} {key} shows {bad:?}:\n{shown}",
                        input.display()
                    );
                }
                assert_eq!(
                    guid(shown),
                    None,
                    "{} {key} shows an object id:\n{shown}",
                    input.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} notices rendered");
}

/// With `[web]`, the owner's mail carries the owner's own report link; no card does (a Teams or
/// Slack channel is shared: whoever answered there would decide for the owner), and no copy to
/// a group does.
#[test]
fn only_the_owners_mail_carries_their_own_report_link() {
    let dir = scratch("report-link");
    std::fs::write(
        dir.join("link.key"),
        "a-link-key-of-at-least-thirty-two-bytes-0001",
    )
    .unwrap();
    let config = config_with(
        &dir,
        "[web]\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://herald.contoso.com\"\nlink_keys = [{ id = \"k1\", secret = { file = \"link.key\" } }]\n\n[channel.teams]\nkind = \"teams\"\nurl = \"https://contoso.example/workflows/invoke\"\n\n[[rule]]\nname = \"reset\"\nactivities = [\"Reset user password\"]\nrecipients = [\"target\", \"group:soc\"]\nchannels = [\"email\", \"teams\"]\n",
    );
    let out_dir = dir.join("rendered");
    let out = dry_run(
        &config,
        &fixture("envelope-reset-password.json"),
        Some(&out_dir),
    );
    let notices = json_lines(&out);
    assert_eq!(
        notices.len(),
        6,
        "owner and two SOC addresses, on two channels"
    );
    for n in &notices {
        let key = n["key"].as_str().unwrap();
        let ext = if n["channel"] == "teams" {
            "json"
        } else {
            "eml"
        };
        let body = readable(&std::fs::read(out_dir.join(format!("{key}.{ext}"))).unwrap());
        let owners_mail = n["recipient"] == "adele.vance@contoso.com" && n["channel"] == "email";
        assert_eq!(
            body.contains("https://herald.contoso.com/r/v1.k1."),
            owners_mail,
            "{}: {body}",
            n["recipient"]
        );
    }
}
