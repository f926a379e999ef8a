"""No live secret at rest (issue 17, item 1; DESIGN.md "Secrets are hashed, and never rest
readable"). Each flow that emails a secret runs through the outbox, a worker task and a real
SMTP server on loopback: the secret reaches SMTP, and afterwards no row of any table, no
log line and no admin page that Support can open holds it. The stored body shows a
placeholder instead.

Before the fix the outbox kept every answer link, reset key, confirmation key and code in
`body_text` / `body_html`, and Support read them in the email ledger."""

import io
import json
import logging
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.urls import NoReverseMatch, reverse

from backoffice.roles import SUPPORT, roles_apply
from consent.reports import review_request_send
from disclosure.models import RecipientTask
from disclosure.services import recipient_task_remind, recipient_task_resend, request_file
from portal.models import EmailMessage, User
from portal.sessions import stored_key
from portal.shared.logs import RedactSecrets, redact
from portal.shared.sealing import SEALED_PREFIX
from tests.disclosure.test_dispatch import student_with_recipients
from tests.factories import (
    PASSWORD,
    StaffFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    published_version,
)
from tests.smtp import html_of, text_of

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER_TOKEN = re.compile(r"/r/([A-Za-z0-9_-]{43,})/")
CONFIRM_KEY = re.compile(r"/accounts/confirm-email/([^/\s]+)/")
RESET_KEY = re.compile(r"/accounts/password/reset/key/([^/\s]+)/")
CODE = re.compile(r"^\s*([A-Za-z0-9-]{6,12})\s*$", re.M)


# The log: what the configured handlers write ---------------------------------------------
@pytest.fixture
def log_output():
    """Everything the portal's configured log handlers write while the test runs."""
    stream = io.StringIO()
    handlers = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecrets) for f in h.filters)
    ]
    assert handlers, "the console handler with the secrets filter is configured"
    previous = [h.setStream(stream) for h in handlers]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.setLevel(level)
        for handler, old in zip(handlers, previous, strict=True):
            handler.setStream(old)


# Every row of every table -------------------------------------------------------------------
def rows_holding(secret: str) -> list[str]:
    """Every table and column whose stored value contains `secret`, as text."""
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, memoryview | bytes):
                        value = bytes(value).decode("utf-8", "replace")
                    if value is not None and secret in str(value):
                        hits.append(f"{table}.{column}")
    return hits


# The flows ----------------------------------------------------------------------------------
def one_from(pattern: re.Pattern, message) -> str:
    html = html_of(message) if message.get_body(preferencelist=("html",)) else ""
    found = set(pattern.findall(text_of(message))) | set(pattern.findall(html))
    assert len(found) == 1, (pattern.pattern, text_of(message))
    return found.pop()


def sign_up(client, smtp) -> str:
    client.post(
        reverse("account_signup"),
        {
            "email": "new.student@example.jp",
            "display_name": "新入 太郎",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    [message] = smtp.received("new.student@example.jp")
    return one_from(CONFIRM_KEY, message)


def password_reset(client, smtp) -> str:
    UserFactory(email="forgot@example.jp")
    client.post(reverse("account_reset_password"), {"email": "forgot@example.jp"})
    [message] = smtp.received("forgot@example.jp")
    return one_from(RESET_KEY, message)


def email_change(client, smtp) -> str:
    student = UserFactory(email="old@example.jp")
    accept(student, published_version())
    client.post(reverse("account_login"), {"login": student.email, "password": PASSWORD})
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    client.post(reverse("account_email"), {"action_add": "", "email": "changed@example.jp"})
    client.logout()
    [message] = smtp.received("changed@example.jp")
    return one_from(CONFIRM_KEY, message)


def code_sign_in(client, smtp) -> str:
    """A student with no portal password (joined from the job site) confirms it is them by
    an emailed code before a sensitive step (re-authentication by code)."""
    student = UserFactory(email="by.code@example.jp")
    student.set_unusable_password()
    student.save(update_fields=["password"])
    client.force_login(student)
    session = client.session
    session["account_authentication_records"] = []
    session.save()
    response = client.post(
        reverse("account_request_reauthentication_code"), {"recipient": student.email}
    )
    assert response.status_code == 302, response.content[:500]
    [message] = smtp.received("by.code@example.jp")
    code = CODE.findall(text_of(message))[-1]
    return code


def company_request_reminder_and_resend(smtp) -> list[str]:
    student, [employer] = student_with_recipients(("ja",))
    request_file(student=student, kind="deletion")
    task = RecipientTask.objects.get(request__student=student)
    recipient_task_remind(task_id=task.pk, number=1)
    recipient_task_resend(task=task, by=StaffFactory(), reason="the contact lost the email")
    messages = smtp.received(employer.primary_contact.email)
    assert len(messages) == 3, smtp.summary()
    return [one_from(ANSWER_TOKEN, message) for message in messages]


def reconsent_mailing(smtp) -> list[str]:
    """The mailing asking students to review a new version: its link needs a sign-in, so
    it carries no secret (nothing to hide; checked so that one added later is noticed)."""
    analysis, _provision = opt_in_purposes()
    UserFactory(email="never.accepted@example.jp")
    review_request_send(purpose=analysis)
    [message] = smtp.received("never.accepted@example.jp")
    for pattern in (ANSWER_TOKEN, CONFIRM_KEY, RESET_KEY):
        assert not pattern.search(text_of(message))
    return []


@pytest.fixture
def sent_secrets(client, smtp_server, log_output, django_capture_on_commit_callbacks):
    """Run every flow that emails a secret; return {flow: [the live secrets it sent]}."""
    flows = {}
    with django_capture_on_commit_callbacks(execute=True):
        flows["sign-up"] = [sign_up(client, smtp_server)]
        flows["password reset"] = [password_reset(client, smtp_server)]
        flows["email change"] = [email_change(client, smtp_server)]
        flows["code sign-in"] = [code_sign_in(client, smtp_server)]
        flows["company request, reminder, resend"] = company_request_reminder_and_resend(
            smtp_server
        )
        flows["re-consent mailing"] = reconsent_mailing(smtp_server)
    # The secrets that were sent must work: the test is about keeping live ones.
    assert all(len(secret) >= 6 for found in flows.values() for secret in found)
    # A log line that names a link (a 404 of an answer page, say) is masked too.
    [token, *_] = flows["company request, reminder, resend"]
    logging.getLogger("django.request").warning("Not Found: /r/%s/", token)
    return flows


def test_no_table_and_no_log_line_holds_a_secret_that_was_emailed(sent_secrets, log_output):
    log = log_output.getvalue()
    found = {
        (flow, secret): hits
        for flow, secrets in sent_secrets.items()
        for secret in secrets
        if (hits := rows_holding(secret) + (["the log"] if secret in log else []))
    }
    assert found == {}
    assert "Not Found: /r/[hidden]/" in log  # the line was written, masked


def test_the_stored_email_shows_a_placeholder_and_keeps_nothing_sealed_once_sent(
    sent_secrets,
):
    stored = EmailMessage.objects.filter(kind__startswith="company_")
    assert stored.count() == 3
    for message in stored:
        assert message.status == EmailMessage.Status.SENT
        assert "only in the sent email" in message.body_text
        assert "only in the sent email" in message.body_html
        assert message.sealed_secrets == ""


def test_no_session_row_holds_the_cookie_that_opens_it(client):
    student = UserFactory()
    client.force_login(student)
    cookie = client.cookies["sessionid"].value
    assert rows_holding(cookie) == []
    assert rows_holding(stored_key(cookie)) == ["django_session.session_key"]
    assert client.get(reverse("dashboard")).status_code == 200  # and it still opens it


def readable_in_session_rows(secret: str) -> list[str]:
    """The session rows from which `secret` can be read without the cookie that opens them,
    by an insider who holds the table and SECRET_KEY: as text, and as Django's own store
    decodes a row (its signing is no seal: base64 and zlib)."""
    from django.contrib.sessions.backends.db import SessionStore as DjangoStore
    from django.contrib.sessions.models import Session

    return [
        row.session_key
        for row in Session.objects.all()
        if secret in row.session_data
        or secret in json.dumps(DjangoStore().decode(row.session_data), ensure_ascii=False)
    ]


def session_of(client) -> dict:
    """The client's session as the portal reads it, with its cookie."""
    from portal.sessions import SessionStore

    return SessionStore(session_key=client.cookies["sessionid"].value).load()


def test_a_form_held_for_re_authentication_leaves_no_readable_cookie_in_its_session(client):
    """allauth keeps the held POST, its headers (the session's own cookie) included, in the
    session until the person re-authenticates (or for good, if they give up)."""
    student = UserFactory()
    accept(student, published_version())
    client.post(reverse("account_login"), {"login": student.email, "password": PASSWORD})
    session = client.session
    session["account_authentication_methods"] = []  # signed in long ago
    session.save()
    cookie = client.cookies["sessionid"].value

    held = client.post(reverse("disclosure:request_new"), {"kind": "deletion", "scope": "all"})
    assert held.url.startswith(reverse("account_reauthenticate"))
    # It is there, for the browser that holds the cookie...
    assert cookie in json.dumps(session_of(client)["account_reauthentication_state"])
    # ...and for no one else.
    assert readable_in_session_rows(cookie) == []
    assert readable_in_session_rows(student.email) == []


def test_an_opened_reset_link_leaves_its_key_readable_in_no_session_row(
    client, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        key = password_reset(client, smtp_server)
    opened = client.get(reverse("account_reset_password_from_key", args=key.split("-", 1)))
    assert opened.status_code == 302  # allauth moved the key into the session
    assert session_of(client)["_password_reset_key"] == key.split("-", 1)[1]
    assert readable_in_session_rows(key.split("-", 1)[1]) == []


def test_a_second_factor_being_set_up_has_its_secret_readable_in_no_session_row(client):
    staff = StaffFactory(mfa=False)
    client.force_login(staff)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    assert session_of(client)["mfa.totp.secret"] == secret
    assert readable_in_session_rows(secret) == []


def test_a_session_row_is_read_only_with_its_own_cookie(client):
    from django.contrib.sessions.models import Session

    from portal.sessions import SessionStore

    client.force_login(UserFactory())
    [row] = Session.objects.all()
    assert session_of(client)["_auth_user_id"]
    assert SessionStore(session_key="x" * 32).decode(row.session_data) == {}
    assert SessionStore().decode(row.session_data) == {}  # as the admin's get_decoded() reads


def test_the_second_factors_secrets_are_sealed_in_their_rows(client):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    staff = StaffFactory()
    RecoveryCodes.activate(staff)
    totp = Authenticator.objects.get(user=staff, type="totp")
    assert totp.data["secret"].startswith(SEALED_PREFIX)
    assert rows_holding(staff.totp_secret) == []
    codes = RecoveryCodes(Authenticator.objects.get(user=staff, type="recovery_codes"))
    assert codes.instance.data["seed"].startswith(SEALED_PREFIX)
    assert all(rows_holding(code) == [] for code in codes.get_unused_codes())
    assert codes.validate_code(codes.get_unused_codes()[0])  # and they still work


def test_dumpdata_writes_signing_secrets_sealed_and_loaddata_reads_them_back(tmp_path):
    from django.core.management import call_command

    from disclosure.models import DataSource

    source = DataSource.objects.create(
        name="応募管理", holds="応募履歴", endpoint="https://apps.example.jp/"
    )
    secret = source.secret
    dump = tmp_path / "sources.json"
    call_command("dumpdata", "disclosure.datasource", output=str(dump), verbosity=0)
    assert secret not in dump.read_text()
    assert SEALED_PREFIX in dump.read_text()

    DataSource.objects.all().delete()
    call_command("loaddata", str(dump), verbosity=0)
    assert DataSource.objects.get(pk=source.pk).secret == secret


def test_a_data_sources_signing_secret_is_sealed_and_shown_once_to_a_superuser(client):
    from audit.models import AuditEntry
    from disclosure.models import DataSource

    superuser = StaffFactory(is_superuser=True)
    client.force_login(superuser)
    added = client.post(
        reverse("admin:disclosure_datasource_add"),
        {
            "name": "応募管理",
            "holds": "応募履歴",
            "endpoint": "https://apps.example.jp/",
            "active": "on",
        },
    )
    source = DataSource.objects.get(name="応募管理")
    secret = source.secret  # the portal reads it in clear, to sign with
    assert len(secret) >= 40
    assert secret in added.content.decode()
    assert "no-store" in added["Cache-Control"]
    assert rows_holding(secret) == []  # the row holds it sealed
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM disclosure_datasource WHERE id = %s", [source.pk])
        assert cursor.fetchone()[0].startswith(SEALED_PREFIX)

    change = reverse("admin:disclosure_datasource_change", args=[source.pk])
    assert secret not in client.get(change).content.decode()  # never shown again
    new = reverse("admin:disclosure_datasource_new_secret", args=[source.pk])
    assert client.get(new).status_code == 200
    assert DataSource.objects.get(pk=source.pk).secret == secret  # a GET changes nothing
    shown = client.post(new).content.decode()
    renewed = DataSource.objects.get(pk=source.pk).secret
    assert renewed != secret and renewed in shown and rows_holding(renewed) == []
    assert AuditEntry.objects.filter(name="disclosure.new_source_secret").count() == 1

    roles_apply(group_model=Group, permission_model=Permission)
    officer = StaffFactory(is_superuser=False)
    officer.groups.add(Group.objects.get(name="Privacy officer"))
    client.force_login(officer)
    assert client.post(new).status_code == 403
    assert DataSource.objects.get(pk=source.pk).secret == renewed


def admin_pages(user) -> list[str]:
    """Every admin list the user may view, and the change page of every row in it."""
    pages = []
    request = type("R", (), {"user": user})()
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_view_permission(request):
            continue
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        try:
            pages.append(reverse(f"{name}_changelist"))
        except NoReverseMatch:
            continue
        for pk in model._default_manager.values_list("pk", flat=True)[:50]:
            pages.append(reverse(f"{name}_change", args=[pk]))
    return pages


def test_support_sees_no_secret_on_any_admin_page(sent_secrets, client):
    roles_apply(group_model=Group, permission_model=Permission)  # flushed by transaction=True
    support = StaffFactory(is_superuser=False)
    support.groups.add(Group.objects.get(name=SUPPORT))
    client.force_login(support)
    secrets = [secret for found in sent_secrets.values() for secret in found]
    pages = admin_pages(support)
    assert reverse("admin:portal_emailmessage_changelist") in pages
    assert len([p for p in pages if "/portal/emailmessage/" in p]) > 5  # the bodies are read
    shown = {}
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        if leaked := [s for s in secrets if s in html]:
            shown[page] = leaked
    assert shown == {}


def test_the_log_filter_masks_every_kind_of_secret_link():
    assert redact("GET /r/abcDEF_123-xyz/ 200") == "GET /r/[hidden]/ 200"
    assert redact("/accounts/password/reset/key/3f-abc-def/") == (
        "/accounts/password/reset/key/[hidden]/"
    )
    assert redact("/accounts/confirm-email/MQ:1tx:abc/") == "/accounts/confirm-email/[hidden]/"
    assert redact("/requests/R-261205-AB12/") == "/requests/R-261205-AB12/"
    callback = "/accounts/oidc/jobsite/login/callback/"
    assert redact(f"GET {callback}?state=s1&code=c0de-XYZ&x=1 302") == (
        f"GET {callback}?state=s1&code=[hidden]&x=1 302"
    )
    assert redact(f"{callback}?code=c0de") == f"{callback}?code=[hidden]"
    assert redact("/search/?code=1234") == "/search/?code=1234"  # not a callback


TOKEN = "A" * 43


def test_a_logged_exception_has_its_traceback_masked_too():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    log = logging.getLogger("tests.secrets.traceback")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"while reading /r/{TOKEN}/")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    assert "RuntimeError: while reading /r/[hidden]/" in stream.getvalue()
    assert TOKEN not in stream.getvalue()


def test_gunicorns_error_lines_are_masked(capsys):
    """After a worker timed out, gunicorn logs "Error handling request <method> <uri>" on its
    own error log, which settings.LOGGING does not configure."""
    from gunicorn.config import Config

    from portal.gunicorn_conf import RedactingLogger

    config = Config()
    config.set("errorlog", "-")
    config.set("accesslog", "-")
    logger = RedactingLogger(config)
    logger.error("Error handling request %s %s", "POST", f"/r/{TOKEN}/?x=1")
    logger.access_log.info(f"GET /company/w/{TOKEN}/")
    written = capsys.readouterr()
    assert "Error handling request POST /r/[hidden]/?x=1" in written.err
    assert TOKEN not in written.err + written.out


@pytest.fixture
def celery_logging():
    """Celery's own logging set up as a worker sets it up, and put back afterwards."""
    from celery.app.log import Logging

    loggers = [logging.getLogger(name) for name in ("", "celery", "celery.task")]
    kept = [(logger, list(logger.handlers), logger.level, logger.propagate) for logger in loggers]
    try:
        yield
    finally:
        for logger, handlers, level, propagate in kept:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        Logging._setup = False


def test_a_worker_keeps_the_filter_on_every_handler_celery_makes(celery_logging, capfd):
    from portal.celery import app

    app.log.setup(loglevel="INFO", redirect_stdouts=False)
    for name in ("", "celery.task"):
        handlers = logging.getLogger(name).handlers
        assert handlers, name
        assert all(any(isinstance(f, RedactSecrets) for f in h.filters) for h in handlers)
    logging.getLogger("portal.tasks").warning("email 1 attempt 1 failed: /r/%s/ refused", TOKEN)
    written = capfd.readouterr()
    assert "/r/[hidden]/ refused" in written.err + written.out
    assert TOKEN not in written.err + written.out


def test_an_smtp_refusal_quoting_a_link_is_stored_masked(smtp_server, settings):
    from portal.shared.emails import email_queue_message

    smtp_server.data_replies = [f"554 5.7.1 refused: links to /r/{TOKEN}/ are not allowed"]
    message = email_queue_message(
        to="x@example.jp", subject="s", body_text="b", kind="test", language="ja"
    )
    message.refresh_from_db()  # tried at once (the tests' tasks run in-process)
    assert message.status == EmailMessage.Status.FAILED
    assert "/r/[hidden]/" in message.last_error
    assert TOKEN not in message.last_error


def test_a_user_left_after_the_flows_can_still_use_what_was_emailed(sent_secrets, client):
    """The secrets searched for were live: the reset key still sets a password."""
    [key] = sent_secrets["password reset"]
    response = client.get(f"/accounts/password/reset/key/{key}/", follow=True)
    assert response.status_code == 200
    assert User.objects.filter(email="forgot@example.jp").exists()
    assert "password1" in response.content.decode()


def test_the_migration_takes_the_secrets_out_of_emails_stored_before_sealing():
    from importlib import import_module

    from django.apps import apps

    from portal.shared.sealing import reveal, unseal

    migration = import_module("portal.migrations.0011_seal_stored_secrets")
    link = "https://portal.example.jp/r/" + "A" * 43 + "/"
    reset = "https://portal.example.jp/accounts/password/reset/key/3f-abc-123/"
    waiting = EmailMessage.objects.create(
        to="a@example.jp",
        subject="s",
        body_text=f"Open {link}\nor {link}",
        body_html=f'<a href="{link}">{link}</a>',
        kind="company_request:R-1",
        language="ja",
    )
    sent = EmailMessage.objects.create(
        to="b@example.jp",
        subject="s",
        body_text=f"Reset: {reset}",
        kind="password_reset_key",
        language="en",
        status=EmailMessage.Status.SENT,
    )
    migration.seal_stored(apps, None)
    waiting.refresh_from_db()
    sent.refresh_from_db()
    assert rows_holding("A" * 43) == [] and rows_holding("3f-abc-123") == []
    assert "only in the sent email" in waiting.body_text and sent.sealed_secrets == ""
    values = unseal(waiting.sealed_secrets)
    assert reveal(waiting.body_text, values) == f"Open {link}\nor {link}"
    assert reveal(waiting.body_html, values, html=True) == f'<a href="{link}">{link}</a>'


def test_every_log_line_goes_through_the_masking_handler():
    """Django's own handlers (its DEBUG console, mail to ADMINS, the development server's
    access lines) wrote a request's path unmasked; every line now reaches the root's."""
    for name in ("django", "django.request", "django.server", "django.security"):
        logger = logging.getLogger(name)
        assert logger.handlers == [], name
    ours = [h for h in logging.getLogger().handlers if not type(h).__module__.startswith("_pytest")]
    assert ours and all(any(isinstance(f, RedactSecrets) for f in h.filters) for h in ours)
