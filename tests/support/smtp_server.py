#!/usr/bin/env python3
"""A real SMTP server for Herald's tests (aiosmtpd), run as its own process.

It stores every accepted message as DIR/NNNNNN.eml, can require STARTTLS and AUTH, and answers
DATA as a script file says: each line of SCRIPT is consumed by one DATA command and is one of
`250` (accept), a reply code such as `451` or `550`, or `drop` (close the connection). When the
script is empty, messages are accepted. Prints `READY` on stdout once it listens.

With `--refuse FILE`, the relay refuses whole connections while FILE exists and says how:
`greeting` answers every new connection `554` and closes it; `auth` refuses every AUTH with
`535`. Removing FILE fixes the relay (a test's "the operator renewed the password").
"""
import argparse
import asyncio
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REPLIES = {
    "421": "421 4.3.2 Service shutting down",
    "451": "451 4.3.0 Temporary failure, try again later",
    "452": "452 4.3.1 Insufficient system storage",
    "550": "550 5.1.1 Recipient address rejected: no such user",
    "554": "554 5.7.1 Message rejected",
}


class Handler:
    def __init__(self, maildir, script, delay):
        self.delay = delay
        self.maildir = maildir
        self.script = script
        self.lock = threading.Lock()
        self.count = len([n for n in os.listdir(maildir) if n.endswith(".eml")])

    def next_action(self):
        with self.lock:
            if not os.path.exists(self.script):
                return "250"
            with open(self.script) as f:
                lines = [l.strip() for l in f if l.strip()]
            if not lines:
                return "250"
            with open(self.script + ".tmp", "w") as f:
                f.write("".join(l + "\n" for l in lines[1:]))
            os.replace(self.script + ".tmp", self.script)
            return lines[0]

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        action = self.next_action()
        if action == "drop":
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        if action != "250":
            return REPLIES.get(action, action + " scripted reply")
        with self.lock:
            self.count += 1
            name = os.path.join(self.maildir, "%06d.eml" % self.count)
        header = "X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n" % (
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
        )
        tmp = name + ".tmp"
        with open(tmp, "wb") as f:
            f.write(header.encode() + envelope.original_content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name)
        return "250 2.0.0 OK queued"


REFUSE = None


def refusing(how):
    """Whether the refuse file currently says to refuse `how` ("greeting" or "auth")."""
    if not REFUSE:
        return False
    try:
        with open(REFUSE) as f:
            return f.read().strip() == how
    except FileNotFoundError:
        return False


class SlowGreeting(SMTP):
    """Waits before the 220 greeting of each new connection (a relay slow to accept), or
    refuses the connection with 554 while the refuse file says `greeting`."""

    greeting_delay = 0.0

    async def _handle_client(self):
        if self.greeting_delay:
            await asyncio.sleep(self.greeting_delay)
        if refusing("greeting"):
            await self.push("554 5.3.2 Service refused: this relay takes no mail now")
            self.transport.close()
            return
        await super()._handle_client()


class SlowGreetingController(Controller):
    def factory(self):
        return SlowGreeting(self.handler, **self.SMTP_kwargs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--script", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (SMTPS), not STARTTLS")
    p.add_argument("--auth", help="USER:PASSWORD required before MAIL")
    p.add_argument("--delay-ms", type=int, default=0, help="wait this long before answering DATA")
    p.add_argument("--greeting-delay-ms", type=int, default=0, help="wait this long before greeting a new connection")
    p.add_argument("--refuse", help="while this file exists, refuse connections as it says (greeting or auth)")
    args = p.parse_args()
    global REFUSE
    REFUSE = args.refuse
    os.makedirs(args.maildir, exist_ok=True)

    kwargs = {}
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.implicit_tls:
            kwargs["ssl_context"] = context
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
            ok = ok and not refusing("auth")
            # handled=False: aiosmtpd answers a refusal with 535 itself (with True it says nothing)
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = bool(args.tls_cert) and not args.implicit_tls

    SlowGreeting.greeting_delay = args.greeting_delay_ms / 1000.0
    controller = SlowGreetingController(Handler(args.maildir, args.script, args.delay_ms / 1000.0), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin or kills us
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
