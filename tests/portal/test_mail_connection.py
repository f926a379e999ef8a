"""A worker's one SMTP connection, kept across messages (portal/shared/mail_connection.py),
against a real SMTP server on loopback that counts its connections and can drop them: a
connection the server closed is reopened and the message sent once; a failure once the
message reached DATA is never sent again here (the outbox's retry decides)."""

import smtplib

import pytest
from django.core.mail import EmailMessage

from portal.shared import mail_connection
from portal.shared.mail_connection import mail_connection_close, mail_connection_keep, mail_send
from tests.smtp import SmtpServer


class CountingSmtpServer(SmtpServer):
    """Counts the connections (one EHLO each); `drop_after_data` closes the connection
    right after accepting the next message, as a server does at its idle timeout or its
    limit of messages per connection; `drop_in_data` closes it once the message is in,
    before answering (the client cannot know whether it was accepted)."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0
        self.drop_after_data = False
        self.drop_in_data = False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self._lock:
            self.connections += 1
        return responses

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if self.drop_in_data:
            self.drop_in_data = False
            server.transport.close()
        elif self.drop_after_data:
            self.drop_after_data = False
            await server.push(reply)
            server.transport.close()
        return reply


@pytest.fixture
def server(settings):
    with CountingSmtpServer() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = smtp.host
        settings.EMAIL_PORT = smtp.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        yield smtp


@pytest.fixture
def kept():
    """This process keeps its connection, as a worker does."""
    mail_connection_keep()
    try:
        yield
    finally:
        mail_connection_keep(False)


def message(n: int) -> EmailMessage:
    return EmailMessage(subject=f"message {n}", body="-", to=[f"to{n}@example.jp"])


def subjects(server: CountingSmtpServer) -> list[str]:
    return [str(m["Subject"]) for m in server.messages]


def test_a_worker_sends_its_messages_over_one_connection(server, kept):
    for n in range(5):
        mail_send(message(n))

    assert subjects(server) == [f"message {n}" for n in range(5)]
    assert server.connections == 1


def test_elsewhere_each_message_has_a_connection_of_its_own(server):
    for n in range(3):
        mail_send(message(n))

    assert subjects(server) == ["message 0", "message 1", "message 2"]
    assert server.connections == 3


def test_a_connection_the_server_closed_is_reopened_and_the_message_sent_once(server, kept):
    server.drop_after_data = True
    mail_send(message(1))  # accepted; then the server closes the connection

    mail_send(message(2))  # fails at MAIL FROM on the dead connection, then goes on a new one

    assert subjects(server) == ["message 1", "message 2"]
    assert server.attempts == 2  # one DATA each: nothing was handed over twice
    assert server.connections == 2
    mail_send(message(3))  # and the new connection is kept
    assert server.connections == 2


def test_a_message_the_server_may_have_taken_is_not_sent_again(server, kept):
    """The connection drops after the message went in but before the server answered:
    whether it was accepted is unknown, so the failure goes to the caller (the outbox
    records the attempt and decides), never to a second DATA here."""
    server.drop_in_data = True

    with pytest.raises(smtplib.SMTPServerDisconnected):
        mail_send(message(1))

    assert server.attempts == 1
    mail_send(message(2))  # the broken connection was dropped: a new one
    assert server.connections == 2
    assert server.attempts == 2


def test_a_refusal_is_not_sent_again_and_the_connection_is_replaced(server, kept):
    server.data_replies = ["451 4.3.0 try again later"]

    with pytest.raises(smtplib.SMTPDataError):
        mail_send(message(1))
    mail_send(message(2))

    assert server.attempts == 2
    assert subjects(server) == ["message 2"]
    assert server.connections == 2


def test_a_connection_idle_for_long_is_replaced_before_use(server, kept, monkeypatch):
    mail_send(message(1))
    monkeypatch.setattr(mail_connection, "IDLE_SECONDS", 0.0)

    mail_send(message(2))

    assert subjects(server) == ["message 1", "message 2"]
    assert server.connections == 2


def test_new_settings_open_a_new_connection(server, kept, settings):
    mail_send(message(1))
    with CountingSmtpServer() as other:
        settings.EMAIL_PORT = other.port
        mail_send(message(2))
        assert subjects(other) == ["message 2"]
    assert subjects(server) == ["message 1"]
    mail_connection_close()
