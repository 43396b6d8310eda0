"""Real servers on 127.0.0.1 for the tests: SMTP (aiosmtpd) and an HTTP endpoint that records POSTs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from autopo_local.stack import free_port


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    @staticmethod
    def body(message: Message) -> str:
        parts = message.walk() if message.is_multipart() else [message]
        return "".join(
            part.get_payload(decode=True).decode("utf-8", "replace")
            for part in parts
            if part.get_content_maintype() == "text"
        )


@contextmanager
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    """An SMTP server without TLS or auth, as a relay on the same host would be."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


@contextmanager
def webhook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP endpoint that answers 200 to every POST and keeps the JSON bodies, in order."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", 0))
            received.append({"path": self.path, "json": json.loads(self.rfile.read(length) or b"null")})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/hook", received
    finally:
        server.shutdown()
        server.server_close()


def smtp_connection(port: int) -> str:
    """The AIRFLOW_CONN_* value for that server: plain SMTP, no TLS, no login."""
    extra = {"disable_ssl": True, "disable_tls": True, "from_email": "autopo@example.com", "timeout": 10}
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra})


def webhook_connection(url: str) -> str:
    return json.dumps({"conn_type": "http", "host": url})
