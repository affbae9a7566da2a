#!/usr/bin/env python3
"""A real HTTP server for Herald's tests, run as its own process: it stands in for a webhook
receiver. Every request is appended to DIR/requests.jsonl as one JSON object (method, path,
headers with lower-case names, body as text), then answered as the script file says: each line
of SCRIPT is consumed by one request and is `STATUS [BODY]` (`429` also sends `Retry-After: 1`).
When the script is empty, requests get `200 {"ok":true}`. Prints `READY` once it listens.
"""
import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def next_reply(script):
    with LOCK:
        if not os.path.exists(script):
            return 200, '{"ok":true}'
        with open(script) as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        if not lines:
            return 200, '{"ok":true}'
        with open(script + ".tmp", "w") as f:
            f.write("".join(l + "\n" for l in lines[1:]))
        os.replace(script + ".tmp", script)
        status, _, body = lines[0].partition(" ")
        return int(status), body


def handler(record, script):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            entry = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            with LOCK:
                with open(record, "a") as f:
                    f.write(json.dumps(entry) + "\n")
            status, reply = next_reply(script)
            data = reply.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
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
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(os.path.join(args.dir, "requests.jsonl"), args.script))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin or kills us
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
