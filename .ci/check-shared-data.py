#!/usr/bin/env python3
"""Runs `herald test` over the public sample records in ../shared/data (when present) and checks
that every audit record decodes, other log categories are skipped, and nothing panics.

The samples are used in place and never copied into the repository (their licences differ).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
HERALD = os.path.join(ROOT, "target", "debug", "herald")
CONFIG = os.path.join(ROOT, "examples", "herald.toml")
SUMMARY = re.compile(
    r"records decoded: (\d+), selected by a rule: (\d+), skipped: (\d+).*dead letters: (\d+), notifications: (\d+)"
)

# file → (records decoded, skipped, dead letters, reason every dead letter must give)
EXPECT = {
    "elastic-azure-auditlogs/test-audit-logs-duration-as-string.log": (1, 0, 0, None),
    "elastic-azure-auditlogs/test-audit-logs-edgecases.log": (2, 0, 0, None),
    "elastic-azure-auditlogs/test-audit-logs-sample.log": (3, 0, 0, None),
    "elastic-azure-auditlogs/test-audit-logs-tenant-from-resource-id.log": (1, 0, 0, None),
    "elastic-azure-auditlogs/test-auditlogs-raw.log": (3, 0, 0, None),
    "elastic-azure-auditlogs/test-auditlogs-result-description.log": (2, 0, 0, None),
    "elastic-azure-auditlogs/test-auditlogs-result-reason.log": (1, 0, 0, None),
    "elastic-azure-auditlogs/test-auditlogs.log": (1, 0, 0, None),
    # Only `time` and `category` per line: not audit records, refused for their missing id.
    "elastic-azure-auditlogs/test-time-formats-corner-cases.log": (0, 0, 11, "missing `id`"),
    "elastic-beats-azure-auditlogs/audit_log.json": (1, 0, 0, None),
    "elastic-beats-azure-auditlogs/auditlogs.log": (1, 0, 0, None),
    "elastic-beats-azure-auditlogs/auditlogs_ipv6.log": (1, 0, 0, None),
    "msgraph-docs/beta_directoryaudit-list_example1_update_user_strongauthmethod.json": (1, 0, 0, None),
    "msgraph-docs/v1.0_directoryaudit-get_example.json": (1, 0, 0, None),
    "msgraph-docs/v1.0_directoryaudit-list_example1.json": (1, 0, 0, None),
    "msgraph-docs/v1.0_directoryaudit-list_example2_filter_initiatedby.json": (1, 0, 0, None),
    "sekoia-intake-formats/sekoia_eventhub-auditlogs.jsonl": (11, 0, 0, None),
    "sekoia-intake-formats/sekoia_eventhub-signin-and-other.jsonl": (0, 14, 0, None),
    "sekoia-intake-formats/sekoia_graphapi-directoryaudits.jsonl": (78, 0, 0, None),
    # A Graph signIn object, not a directoryAudit.
    "sekoia-intake-formats/sekoia_graphapi-signin.jsonl": (0, 0, 1, "missing `activityDisplayName`"),
    "wazuh/graph_events.json": (2, 0, 0, None),
    # Hand-written rule-test events (the `log` field of each wrapper line); 8 of them carry no
    # record id, which Herald needs for its notification keys.
    "panther-analysis/panther_azure_audit_rule_tests.jsonl": (13, 0, 8, "missing `properties.id`"),
}


def run(path):
    proc = subprocess.run([HERALD, "test", "--config", CONFIG, path], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{path}: herald exited {proc.returncode}\n{proc.stderr}")
    m = SUMMARY.search(proc.stderr)
    if not m:
        sys.exit(f"{path}: no summary in\n{proc.stderr}")
    decoded, _, skipped, dead, _ = map(int, m.groups())
    reasons = [l for l in proc.stderr.splitlines() if l.startswith("dead letter: ")]
    return decoded, skipped, dead, reasons


def main():
    if not os.path.isdir(DATA):
        print("shared data: not present, skipped")
        return
    failures = 0
    checked = len(EXPECT)
    for rel, (want_decoded, want_skipped, want_dead, reason) in sorted(EXPECT.items()):
        path = os.path.join(DATA, rel)
        if rel.startswith("panther-analysis/"):
            tmp = tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False)
            with open(path) as f:
                for line in f:
                    tmp.write(json.dumps(json.loads(line)["log"]) + "\n")
            tmp.close()
            path = tmp.name
        decoded, skipped, dead, reasons = run(path)
        ok = (decoded, skipped, dead) == (want_decoded, want_skipped, want_dead)
        ok = ok and all(reason in r for r in reasons) if reason else ok
        print(f"{'ok  ' if ok else 'FAIL'} {rel}: decoded {decoded}, skipped {skipped}, dead letters {dead}")
        if not ok:
            failures += 1
            print("\n".join(reasons[:5]))
    # Every other file under shared/data that looks like input must at least not crash Herald.
    for dirpath, _, files in os.walk(DATA):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), DATA)
            if rel in EXPECT or not name.endswith((".json", ".jsonl", ".log")):
                continue
            proc = subprocess.run([HERALD, "test", "--config", CONFIG, os.path.join(DATA, rel)], capture_output=True)
            status = "ok  " if proc.returncode == 0 else "FAIL"
            failures += proc.returncode != 0
            checked += 1
            print(f"{status} {rel}: read without a crash")
    print(f"shared-data: {checked - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
