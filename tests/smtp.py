"""A real SMTP server on loopback (aiosmtpd) that records what it receives.

    with SmtpServer() as smtp:
        ...  # point EMAIL_HOST/EMAIL_PORT at smtp.host/smtp.port
        assert smtp.messages[0]["Subject"] == "..."

Set `data_replies` or `rcpt_replies` to make it refuse: each list is consumed one reply per
message (a 4xx "try later" or a 5xx "no such user"); once empty, it accepts again.
"""

import email
import email.policy
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.ports import free_port  # aiosmtpd cannot start on port 0

HOST = "127.0.0.1"


def smtp_settings(server: "SmtpServer") -> dict:
    """Django's SMTP backend pointed at `server`, plainly (no TLS, no login)."""
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": server.host,
        "EMAIL_PORT": server.port,
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_TIMEOUT": 5,
    }


class SmtpServer:
    def __init__(self) -> None:
        self.host = HOST
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        # How many DATA commands arrived, accepted or refused: one per delivery attempt.
        self.attempts = 0
        # Every envelope recipient accepted (RCPT TO), Cc and Bcc included: who really got it.
        self.recipients: list[str] = []
        self.data_replies: list[str] = []
        self.rcpt_replies: list[str] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname=self.host, port=self.port)

    def __enter__(self) -> "SmtpServer":
        self._controller.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._controller.stop()

    # aiosmtpd handler hooks ------------------------------------------------------------
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._lock:
            if self.rcpt_replies:
                return self.rcpt_replies.pop(0)
            self.recipients.append(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.attempts += 1
            if self.data_replies:
                return self.data_replies.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(message)
        return "250 OK"

    # for tests -------------------------------------------------------------------------
    def received(self, to: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == to]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        """Poll until `condition()` holds; for messages sent by another process."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not met within {timeout} s; received: {self.summary()}")
            time.sleep(0.05)

    def summary(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(m["To"], m["Subject"]) for m in self.messages]


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()
