//! Decode + rule-match throughput over a large generated Event Hubs stream, beside a plain
//! `serde_json::Value` parse of the same bytes (the baseline: what "just parsing it" costs).
//!
//! The stream: 100,000 records in `{"records":[…]}` envelopes of 50 (as Event Hubs delivers
//! them), generated from the project's activity fixtures; about 1% are activities the default
//! rule set notifies about, the rest are the everyday noise of a directory (group membership,
//! token timestamps, profile updates — the latter share the `Update user` activity with the
//! MFA rule, so they take the full decode too).
//!
//! Run: `cargo bench --bench decode_match`. Criterion prints time and throughput per group;
//! compare `herald_decode_match` with `serde_json_value` for the ratio.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald::config::Config;
use herald::event::{Item, scan};
use herald::pipeline::{Outcome, Pipeline};
use serde_json::Value;

const ACTIVITIES: &str = include_str!("../tests/fixtures/entra/activities.ndjson");
const STARTER: &str = include_str!("../examples/herald.toml");
const RECORDS: usize = 100_000;
const PER_ENVELOPE: usize = 50;

/// Fixture cases by role in the stream.
const MATCHING: &[&str] = &[
    "reset-user-password",
    "change-password-self-service",
    "user-registered-security-info",
    "admin-registered-security-info",
    "add-member-to-role",
];
const NOISE: &[(&str, usize)] = &[
    ("add-member-to-group", 60),
    ("update-sts-refresh-token-valid-from", 25),
    ("update-user-display-name-only", 10),
    ("set-force-change-user-password", 5),
];

fn fixture(case: &str) -> Value {
    ACTIVITIES
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| {
            v["properties"]["additionalDetails"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["key"] == "fixture-case" && d["value"] == case)
        })
        .unwrap_or_else(|| panic!("no fixture {case}"))
}

/// The stream as Event Hubs messages, and how many records in it a rule should select.
fn stream() -> (Vec<Vec<u8>>, usize) {
    let matching: Vec<Value> = MATCHING.iter().map(|c| fixture(c)).collect();
    let noise: Vec<Value> = NOISE
        .iter()
        .flat_map(|(c, weight)| std::iter::repeat_n(fixture(c), *weight))
        .collect();
    let mut messages = Vec::new();
    let mut records = Vec::with_capacity(PER_ENVELOPE);
    let mut selected = 0;
    for i in 0..RECORDS {
        let mut record = if i % 100 == 37 {
            selected += 1;
            matching[i / 100 % matching.len()].clone()
        } else {
            noise[i * 7919 % noise.len()].clone()
        };
        record["properties"]["id"] = Value::from(format!("Directory_bench_{i:08}"));
        records.push(record);
        if records.len() == PER_ENVELOPE {
            let envelope = serde_json::json!({ "records": records });
            messages.push(serde_json::to_vec(&envelope).unwrap());
            records.clear();
        }
    }
    (messages, selected)
}

fn bench(c: &mut Criterion) {
    let (messages, selected) = stream();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let config = Config::parse(Path::new("examples/herald.toml"), STARTER).unwrap();
    let pipeline = Pipeline::new(config).unwrap();

    // The generated stream is what we think it is.
    let mut check = Outcome::default();
    for m in &messages {
        pipeline.process("bench", m, &mut check);
    }
    assert_eq!(check.records as usize, RECORDS);
    assert_eq!(check.selected as usize, selected);
    eprintln!(
        "stream: {RECORDS} records, {:.1} MB, {} messages, {selected} selected ({:.2}%), {} notifications",
        bytes as f64 / 1e6,
        messages.len(),
        selected as f64 * 100.0 / RECORDS as f64,
        check.notifications.len()
    );

    let rules = &pipeline.config().rules;
    for (name, throughput) in [
        ("records", Throughput::Elements(RECORDS as u64)),
        ("bytes", Throughput::Bytes(bytes as u64)),
    ] {
        let mut group = c.benchmark_group(name);
        group.throughput(throughput);
        group.sample_size(10);
        group.bench_function("serde_json_value", |b| {
            b.iter(|| {
                for m in &messages {
                    black_box(serde_json::from_slice::<Value>(m).unwrap());
                }
            })
        });
        group.bench_function("herald_decode_match", |b| {
            b.iter(|| {
                let mut matches = 0;
                for m in &messages {
                    scan("bench", m, |item| {
                        if let Item::Record(view) = item
                            && rules.wants(view.activity(), view.operation_name())
                        {
                            let event = view.decode().unwrap();
                            matches += rules.select(&event).len();
                        }
                    });
                }
                black_box(matches)
            })
        });
        group.bench_function("herald_decode_match_render", |b| {
            b.iter(|| {
                let mut outcome = Outcome::default();
                for m in &messages {
                    pipeline.process("bench", m, &mut outcome);
                }
                black_box(outcome.notifications.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
