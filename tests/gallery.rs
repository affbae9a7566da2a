//! The gallery of default notices (`herald preview --gallery`): every rule of the starter
//! configuration rendered for every reader and result. Each render's subject and text part is
//! pinned by a snapshot (`tests/snapshots/`), so a wording change is reviewed as a diff
//! (`cargo insta review`, or `INSTA_UPDATE=always cargo test --test gallery`); every render,
//! text and HTML, is checked for what a notice must never contain.

use std::path::{Path, PathBuf};
use std::process::Command;

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn gallery(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-gallery-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = root().join("examples/herald.toml");
    let out = Command::new(HERALD)
        .args(["preview", "--config", config.to_str().unwrap(), "--gallery"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn files(dir: &Path, ext: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .filter(|p| p.file_stem().is_some_and(|s| s != "index"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_default_notice_is_pinned_by_a_snapshot() {
    let dir = gallery("snapshots");
    let texts = files(&dir, "txt");
    // 10 starter rules × 2 results × 3 readers.
    assert_eq!(
        texts.len(),
        60,
        "{:?}",
        texts.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    for (name, text) in texts {
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn the_gallery_page_shows_every_render_side_by_side() {
    let dir = gallery("index");
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let html = files(&dir, "html");
    assert_eq!(html.len(), 60);
    for (name, _) in &html {
        assert!(
            index.contains(&format!("src=\"{name}.html\"")),
            "{name} missing from index.html"
        );
    }
    assert!(index.contains("This rule does not select such a record"));
}

/// No render says `None`, `null` or `undefined`, shows an empty parenthesis, Entra's jargon in
/// the headline, a raw JSON value, a push token or an object id.
#[test]
fn no_default_notice_shows_raw_values_or_sensitive_fields() {
    let dir = gallery("clean");
    for ext in ["txt", "html"] {
        for (name, body) in files(&dir, ext) {
            for bad in [
                "None",
                "null",
                "undefined",
                "()",
                "( )",
                "{\"",
                "[{",
                "\\\"",
                "DeviceToken",
                "fcm-push-token",
                "MethodType",
                "Role.ObjectID",
                "Role.TemplateId",
                "7a1f3c5e-0d2b-4c6e-8f1a-3b5d7e9f1a2c",
                "4f0a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
                "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                "62e90394",
            ] {
                assert!(
                    !body.contains(bad),
                    "{name}.{ext} contains {bad:?}:\n{body}"
                );
            }
            // The Entra activity name appears only in the technical details.
            if ext == "txt" {
                let (_, details) = body.split_once("Technical details").unwrap();
                let activity = details
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Activity:"))
                    .unwrap()
                    .trim();
                let before = body.split_once("Technical details").unwrap().0;
                assert!(
                    !before.to_lowercase().contains(&activity.to_lowercase()),
                    "{name}: {activity:?} outside the technical details"
                );
            }
        }
    }
}
