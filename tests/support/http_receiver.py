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

It also signs users in as the identity platform's OpenID Connect authorization-code flow does
(with PKCE): `GET .../oauth2/v2.0/authorize` redirects to `redirect_uri` with a code and the
`state`; a token request with `grant_type=authorization_code` redeems the code — once, with the
`code_verifier` whose S256 is the code's challenge — for an ID token signed with RS256 by the
key that `GET .../discovery/v2.0/keys` publishes as a JWKS. The ID token's claims are those of
DIR/user.json (at the time of the authorize request) over the defaults (`iss`
`{base}/{tenant}/v2.0`, `aud` the client id, `tid` the tenant, the request's `nonce`, an hour's
`exp`); `"sign_with_other_key": true` signs it with a key the JWKS does not hold.

Graph's users are DIR/users.json (`{"<id or UPN>": {"id": …, "userPrincipalName": …, "mail": …}}`):
`GET /v1.0/users/{id}` answers the user, or `404 Request_ResourceNotFound` as Graph does.

With --hmac-secret it checks each request's `X-Herald-Signature: t=UNIX,v1=HEX` as a webhook
receiver would (HMAC-SHA256 of `"{t}.{body}"` under the secret, compared in constant time, `t`
within five minutes) and records the verdict as `signature`: `valid`, `missing` or
`invalid: why`.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

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


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Identity:
    """The identity platform's sign-in: authorization codes, ID tokens, the JWKS."""

    def __init__(self, dir):
        self.dir = dir
        self.keys = None
        self.codes = {}

    def signing_keys(self):
        """The published key and another, made on first use (most tests sign nobody in)."""
        if self.keys is None:
            from cryptography.hazmat.primitives.asymmetric import rsa
            self.keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
        return self.keys

    def jwks(self):
        with LOCK:
            key = self.signing_keys()[0]
        numbers = key.public_key().public_numbers()
        as_bytes = lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": "k1", "alg": "RS256",
                          "n": b64url(as_bytes(numbers.n)), "e": b64url(as_bytes(numbers.e))}]}

    def authorize(self, base, path, query):
        q = {k: v[0] for k, v in parse_qs(query).items()}
        tenant = path.split("/")[1]
        try:
            with open(os.path.join(self.dir, "user.json")) as f:
                user = json.load(f)
        except FileNotFoundError:
            user = {}
        code = "code-%d" % (len(self.codes) + 1)
        self.codes[code] = {"tenant": tenant, "client_id": q.get("client_id", ""), "nonce": q.get("nonce"),
                            "challenge": q.get("code_challenge"), "redirect_uri": q.get("redirect_uri"), "user": user}
        return 302, q.get("redirect_uri", "") + "?" + urlencode({"code": code, "state": q.get("state", "")})

    def redeem(self, base, form):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        f = {k: v[0] for k, v in parse_qs(form).items()}
        grant = self.codes.pop(f.get("code", ""), None)
        if grant is None:
            return 400, json.dumps({"error": "invalid_grant", "error_description": "AADSTS70008: The provided authorization code has expired or was used."})
        verifier = f.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return 400, json.dumps({"error": "invalid_grant", "error_description": "AADSTS501481: The Code_Verifier does not match the code_challenge."})
        if f.get("redirect_uri") != grant["redirect_uri"] or f.get("client_id") != grant["client_id"]:
            return 400, json.dumps({"error": "invalid_grant", "error_description": "AADSTS50148: redirect_uri or client_id does not match."})
        now = int(time.time())
        user = dict(grant["user"])
        other = user.pop("sign_with_other_key", False)
        claims = {"iss": "%s/%s/v2.0" % (base, grant["tenant"]), "aud": grant["client_id"], "tid": grant["tenant"],
                  "nonce": grant["nonce"], "iat": now, "nbf": now, "exp": now + 3600, "ver": "2.0",
                  "sub": "s-" + user.get("oid", "0"), "oid": "0", "name": "Someone", "preferred_username": "someone@contoso.com"}
        claims.update(user)
        header = {"alg": "RS256", "typ": "JWT", "kid": "k1"}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        key = self.signing_keys()[1 if other else 0]
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + "." + b64url(signature)
        return 200, json.dumps({"token_type": "Bearer", "scope": "openid profile", "expires_in": 3599,
                                "access_token": "at-" + grant["nonce"], "id_token": token})


def graph_user(dir, who):
    try:
        with open(os.path.join(dir, "users.json")) as f:
            users = json.load(f)
    except FileNotFoundError:
        users = {}
    from urllib.parse import unquote
    user = users.get(unquote(who))
    if user is None:
        return 404, json.dumps({"error": {"code": "Request_ResourceNotFound",
                                          "message": "Resource '%s' does not exist or one of its queried reference-property objects are not present." % unquote(who)}})
    return 200, json.dumps(dict({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity"}, **user))


def handler(record, script, secret, identity):
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
            path, _, query = self.path.partition("?")
            base = "http://%s" % self.headers.get("Host", "")
            if self.command == "GET" and path.endswith("/oauth2/v2.0/authorize"):
                with LOCK:
                    status, reply = identity.authorize(base, path, query)
            elif self.command == "GET" and path.endswith("/discovery/v2.0/keys"):
                status, reply = 200, json.dumps(identity.jwks())
            elif self.command == "GET" and path.startswith("/v1.0/users/") and path.count("/") == 3 and not os.path.exists(script + ".get"):
                status, reply = graph_user(os.path.dirname(record), path.rsplit("/", 1)[1])
            elif path.endswith("/oauth2/v2.0/token") and b"grant_type=authorization_code" in body:
                with LOCK:
                    status, reply = identity.redeem(base, body.decode())
            else:
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
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(os.path.join(args.dir, "requests.jsonl"), args.script, args.hmac_secret, Identity(args.dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin or kills us
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
