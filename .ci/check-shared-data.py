#!/usr/bin/env python3
"""Runs `herald test` over the public sample records in ../shared/data (when present) and checks
that every audit record decodes, other log categories are skipped, and nothing panics.

Then renders a notice for every record (the starter rules select few of them, so a catch-all
rule tells the owner and a group about every one) and checks the text and HTML of each: no raw
JSON value, no `None`/`null`/`undefined` or empty parenthesis, no sensitive property's name or
value, and no object id of a target or initiator outside the technical details.

The samples are used in place and never copied into the repository (their licences differ).
"""
import email
import email.policy
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
    # A Graph signIn object, not a directoryAudit: skipped by its kind, like hub categories.
    "sekoia-intake-formats/sekoia_graphapi-signin.jsonl": (0, 1, 0, None),
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


CATCH_ALL = """
[channel.email]
kind = "file"
from = "Contoso Security <security-notices@contoso.com>"
dir = "mail"

[groups]
soc = ["soc@contoso.com"]

[[source]]
kind = "file"
name = "in"
path = "in"
create = true

[[rule]]
name = "everything"
recipients = ["target", "group:soc"]
"""

SECRET_PARTS = ("token", "secret", "password", "hash", "key", "thumbprint", "credential", "certificate")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NOISE = re.compile(r"\bNone\b|\bnull\b|\bundefined\b|\(\s*\)")


def sensitive(name):
    lower = name.lower()
    return any(p in lower for p in SECRET_PARTS) or lower == "id" or name.endswith(("Id", "ID"))


def records_of(path):
    """Every JSON object in the file that looks like an audit record, wherever it is nested."""
    text = open(path, encoding="utf-8", errors="replace").read()
    values = []
    try:
        values.append(json.loads(text))
    except ValueError:
        for line in text.splitlines():
            try:
                values.append(json.loads(line))
            except ValueError:
                pass
    found = []

    def walk(v):
        if isinstance(v, dict):
            if "targetResources" in v or "initiatedBy" in v:
                found.append(v)
            for child in v.values():
                walk(child)
        elif isinstance(v, list):
            for child in v:
                walk(child)

    for v in values:
        walk(v)
    return found


def forbidden_in(records):
    """What no notice about these records may show outside its technical details: the values
    of sensitive fields and object ids (as text), and sensitive fields' names as labels
    (`DeviceToken: …`; a list of property names may mention one)."""
    bad = set()
    names = set()

    def scan_json(v):
        if isinstance(v, dict):
            for k, child in v.items():
                if sensitive(k):
                    names.add(k)
                    if isinstance(child, str) and len(child) >= 6:
                        bad.add(child)
                scan_json(child)
        elif isinstance(v, list):
            for child in v:
                scan_json(child)

    for r in records:
        actor = r.get("initiatedBy") or {}
        for who in (actor.get("user") or {}, actor.get("app") or {}):
            for k in ("id", "servicePrincipalId", "appId"):
                if isinstance(who.get(k), str) and GUID.match(who[k]):
                    bad.add(who[k])
        for t in r.get("targetResources") or []:
            if isinstance(t.get("id"), str) and GUID.match(t["id"]):
                bad.add(t["id"])
            for p in t.get("modifiedProperties") or []:
                name = p.get("displayName") or ""
                for side in ("oldValue", "newValue"):
                    value = p.get(side)
                    try:
                        decoded = json.loads(value) if isinstance(value, str) else value
                    except ValueError:
                        decoded = value
                    if sensitive(name) and isinstance(value, str) and len(value.strip('"')) >= 6:
                        bad.add(value.strip('"'))
                    scan_json(decoded)
                if sensitive(name) and name:
                    names.add(name)
    return bad, names


def rendered_parts(eml):
    msg = email.message_from_bytes(open(eml, "rb").read(), policy=email.policy.default)
    for part in msg.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            yield part.get_content_type(), part.get_content()


def check_renders(path, work):
    """Renders every record of `path` with the catch-all rule; returns (notices, problems)."""
    out = os.path.join(work, "out")
    subprocess.run(["rm", "-rf", out])
    config = os.path.join(work, "herald.toml")
    with open(config, "w") as f:
        f.write(CATCH_ALL)
    proc = subprocess.run([HERALD, "test", "--config", config, "--render", out, path], capture_output=True, text=True)
    if proc.returncode != 0 and "render failed" in proc.stderr:
        return 0, [f"render failed: {proc.stderr[-500:]}"]
    bad, names = forbidden_in(records_of(path))
    labels = [re.compile(r"(?<![A-Za-z.])" + re.escape(n) + r"\s*:") for n in names]
    problems = []
    notices = 0
    for name in sorted(os.listdir(out)) if os.path.isdir(out) else []:
        notices += 1
        for kind, body in rendered_parts(os.path.join(out, name)):
            shown = body.split("Technical details")[0]
            for needle in ('{"', "[{", '\\"'):
                if needle in shown:
                    problems.append(f"{name} {kind}: raw JSON ({needle!r})")
            if NOISE.search(re.sub(r"<[^>]*>", " ", shown)):
                problems.append(f"{name} {kind}: {NOISE.search(re.sub(r'<[^>]*>', ' ', shown)).group(0)!r}")
            for b in bad:
                if b in shown:
                    problems.append(f"{name} {kind}: shows {b!r}")
            for label in labels:
                if label.search(shown):
                    problems.append(f"{name} {kind}: shows the field {label.pattern!r}")
    return notices, problems


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
    # Every record rendered as a notice: nothing raw, nothing sensitive.
    work = tempfile.mkdtemp(prefix="herald-shared-renders-")
    total = 0
    for dirpath, _, files in os.walk(DATA):
        for name in sorted(files):
            if not name.endswith((".json", ".jsonl", ".log")) or name.endswith("-expected.json"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), DATA)
            notices, problems = check_renders(os.path.join(DATA, rel), work)
            total += notices
            checked += 1
            status = "ok  " if not problems else "FAIL"
            failures += bool(problems)
            print(f"{status} {rel}: {notices} notices rendered, clean" if not problems else f"{status} {rel}: {notices} notices")
            for p in problems[:5]:
                print(f"     {p}")
    print(f"shared-data: {total} notices checked for raw JSON and sensitive fields")
    print(f"shared-data: {checked - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
