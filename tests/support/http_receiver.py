#!/usr/bin/env python3
"""A real HTTP server for Herald's tests, run as its own process: it stands in for a webhook
receiver and for Microsoft's cloud (the identity platform's token endpoint and Graph), following
their documented request and response formats.

Every request is answered as a script file says, then appended to DIR/requests.jsonl as one JSON
object (time, method, path, headers with lower-case names, body as text, the `status` answered,
and `bearer`: whether its `Authorization: Bearer` token is one this server issued — `issued`,
`unknown` or `missing`). Each script line is consumed by one request and is `STATUS [BODY]`
(`429` and `503` also send `Retry-After: 1`); a line `~TEXT STATUS [BODY]` is consumed only by
a request whose `METHOD PATH` contains TEXT (the first line that applies is used). Requests to
`.../oauth2/v2.0/token` follow SCRIPT.token and by default get a new access token each time
(`tok-1`, `tok-2`, ...; `expires_in` 3599). Other requests follow SCRIPT, and by default get
`200 {"ok":true}`, or as Graph documents: `202` with no body for `sendMail`, `200 {"value":
true}` for `revokeSignInSessions`, `204` for `confirmCompromised` and for a `PATCH` of a user. GET requests (Graph's
`directoryAudits`) follow SCRIPT.get, whose BODY may be `@FILE` (the body is that file's
content), and by default get an empty page. A `3xx` line's BODY is sent as its `Location`. Prints `READY` once it listens.

With --hmac-secret it checks each request's `X-Herald-Signature: t=UNIX,v1=HEX` as a webhook
receiver would (HMAC-SHA256 of `"{t}.{body}"` under the secret, compared in constant time, `t`
within five minutes) and records the verdict as `signature`: `valid`, `missing` or
`invalid: why`.
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
TOKENS = [0]
ISSUED = set()


def default_reply(path, method="POST"):
    if method == "GET":
        return 200, '{"value":[]}'
    if path.endswith("/oauth2/v2.0/token"):
        TOKENS[0] += 1
        ISSUED.add("tok-%d" % TOKENS[0])
        return 200, json.dumps({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": "tok-%d" % TOKENS[0]})
    if path.endswith("/sendMail"):
        return 202, ""
    if path.endswith("/revokeSignInSessions"):
        return 200, '{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean","value":true}'
    if path.endswith("/confirmCompromised") or method == "PATCH":
        return 204, ""
    return 200, '{"ok":true}'


def next_reply(script, path, method="POST"):
    if method == "GET":
        script = script + ".get"
    elif path.endswith("/oauth2/v2.0/token"):
        script = script + ".token"
    with LOCK:
        if not os.path.exists(script):
            return default_reply(path, method)
        with open(script) as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        request = "%s %s" % (method, path)
        chosen = None
        for i, line in enumerate(lines):
            if not line.startswith("~"):
                chosen = i
                break
            text, _, rest = line[1:].partition(" ")
            if text in request:
                chosen = i
                lines[i] = rest
                break
        if chosen is None:
            return default_reply(path, method)
        line = lines.pop(chosen)
        with open(script + ".tmp", "w") as f:
            f.write("".join(l + "\n" for l in lines))
        os.replace(script + ".tmp", script)
        status, _, body = line.partition(" ")
        if body.startswith("@"):
            with open(body[1:]) as f:
                body = f.read()
        return int(status), body


def verify(secret, header, body):
    if header is None:
        return "missing"
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return "invalid: not t=...,v1=..."
    if not parts["t"].isascii() or not parts["t"].isdigit():
        return "invalid: t is not a number"
    t = int(parts["t"])
    if abs(time.time() - t) > 300:
        return "invalid: stale t"
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), parts["v1"].encode()):
        return "invalid: wrong MAC"
    return "valid"


def handler(record, script, secret):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.do_POST()

        def do_PATCH(self):
            self.do_POST()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            entry = {
                "time": time.time(),
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            if secret is not None:
                entry["signature"] = verify(secret, self.headers.get("X-Herald-Signature"), body)
            authorization = self.headers.get("Authorization")
            if authorization is None or not authorization.startswith("Bearer "):
                entry["bearer"] = "missing"
            else:
                with LOCK:
                    entry["bearer"] = "issued" if authorization[7:] in ISSUED else "unknown"
            status, reply = next_reply(script, self.path, self.command)
            entry["status"] = status
            with LOCK:
                with open(record, "a") as f:
                    f.write(json.dumps(entry) + "\n")
            location = None
            if 300 <= status < 400:
                location, reply = reply, ""
            data = reply.encode()
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status in (429, 503):
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--script", required=True)
    p.add_argument("--hmac-secret")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(os.path.join(args.dir, "requests.jsonl"), args.script, args.hmac_secret))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin or kills us
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
