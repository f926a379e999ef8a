"""A company's webhook (issue 19): each task sent to the company is POSTed to it once, signed,
tried again on timeouts and 5xx answers, failed for staff on a refusal, swept again when its
message was lost, delivered again by staff (audited); its secret sealed at rest and shown
once. Against a real HTTP receiver on loopback that checks the signature as docs/api.md
tells companies to."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone, translation

from audit.models import AuditEntry
from disclosure import services, signing
from disclosure.models import DataRequest, RecipientTask, Webhook, WebhookDelivery
from disclosure.services import request_file, requests_sweep, webhook_deliver
from disclosure.services.webhooks import EVENT_HEADER, webhook_backoff
from portal.shared.queueing import lease
from portal.shared.sealing import SEALED_PREFIX
from tests.disclosure.test_dispatch import student_with_recipients
from tests.disclosure.test_worker_flow import smtp, wait_until, worker  # noqa: F401 - fixtures
from tests.factories import EmployerFactory, StaffFactory
from tests.workers import REAL_WORKER_MARKS

pytestmark = pytest.mark.django_db

SECRET = "the-company-secret"  # noqa: S105 - a test value


class Receiver:
    """A company's receiver as docs/api.md describes it: checks the signature and its age
    with the shared secret (401 if wrong), drops an event id it has seen (200, not acted on
    again), and otherwise answers `status` after sleeping `delay` seconds."""

    def __init__(self, secret=SECRET, *, status=200, delay=0.0, fail_first=0):
        self.secret, self.status, self.delay = secret, status, delay
        self.fail_first = fail_first  # answer 503 to this many signed, new events first
        self.posts: list[dict] = []  # every POST that reached it
        self.events: list[dict] = []  # the events it acted on (signed, new)
        self.seen: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append({"headers": dict(self.headers), "body": body})
                time.sleep(receiver.delay)
                code = receiver.handle(self.headers, body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/portal"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, headers, body: bytes) -> int:
        problem = signing.verify(
            self.secret,
            body,
            timestamp=headers.get(signing.TIMESTAMP_HEADER),
            sig=headers.get(signing.SIGNATURE_HEADER),
        )
        if problem:
            return 401
        event = json.loads(body)
        # The id is in the signed body too: the header may be trusted only if they agree.
        if event["id"] != headers.get(EVENT_HEADER):
            return 400
        if event["id"] in self.seen:
            return 200  # a duplicate: taken, not acted on again
        if self.fail_first:
            self.fail_first -= 1
            return 503
        if self.status >= 300:
            return self.status
        self.seen.add(event["id"])
        self.events.append(event)
        return self.status

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    settings.WEBHOOK_MAX_ATTEMPTS = 3


def webhook_for(employer, url, secret=SECRET) -> Webhook:
    return Webhook.objects.create(employer=employer, endpoint=url, secret=secret)


def file_deletion(student, capture, *, execute=True) -> DataRequest:
    with capture(execute=execute):
        return request_file(student=student, kind=DataRequest.Kind.DELETION)


# Delivered once, signed, the documented body ---------------------------------------------------
def test_a_new_task_is_delivered_once_signed_with_the_api_item(
    receiver, django_capture_on_commit_callbacks
):
    r = receiver()
    student, (company, other) = student_with_recipients(("ja", "en"))
    webhook_for(company, r.url)
    request = file_deletion(student, django_capture_on_commit_callbacks)

    task = RecipientTask.objects.get(request=request, employer=company)
    assert task.status == RecipientTask.Status.SENT
    delivery = WebhookDelivery.objects.get()
    assert delivery.task == task  # another employer's task never goes to this webhook
    assert delivery.status == WebhookDelivery.Status.SENT
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 200, "")
    assert len(r.posts) == 1 and len(r.events) == 1
    headers, event = r.posts[0]["headers"], r.events[0]
    assert headers[EVENT_HEADER] == str(delivery.event_id) == event["id"]
    assert headers["Content-Type"].startswith("application/json")
    assert event["event"] == "request.passed_on"
    item = event["request"]
    # The shape GET /api/v1/requests lists.
    assert set(item) == {
        "reference",
        "kind",
        "scope",
        "status",
        "filed_at",
        "due_at",
        "reminders_sent",
        "student",
        "provisions",
        "answer",
        "correction",
        "changed_at",
    }
    assert item["reference"] == request.reference and item["kind"] == "deletion"
    assert item["status"] == "open" and item["answer"] is None
    assert item["student"] == {"name": student.display_name, "email": student.email}
    assert item["provisions"][0]["data_items"] == "閲覧履歴の分析結果"

    # Sending the task again (a second message) neither sends nor delivers twice.
    assert services.recipient_task_send(task_id=task.pk) is False
    assert WebhookDelivery.objects.count() == 1
    # The unique (webhook, task) is the belt.
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.create(webhook=delivery.webhook, task=task)


def test_the_body_is_the_same_item_the_api_lists(receiver, django_capture_on_commit_callbacks):
    from disclosure.services.task_items import task_item, task_items_provisions

    r = receiver()
    student, (company,) = student_with_recipients(("ja",))
    webhook_for(company, r.url)
    request = file_deletion(student, django_capture_on_commit_callbacks)
    task = RecipientTask.objects.select_related("request__student").get(request=request)
    # The body is written in the company's language, whatever language this thread is in
    # (an earlier test on the same worker may have left English active).
    with translation.override(company.message_language):
        expected = task_item(task, task_items_provisions([task])[(student.pk, company.pk)])
    assert r.events[0]["request"] == json.loads(json.dumps(expected, cls=DjangoJSONEncoder))


def test_no_webhook_or_an_inactive_one_no_delivery(receiver, django_capture_on_commit_callbacks):
    r = receiver()
    student, (company,) = student_with_recipients(("ja",))
    Webhook.objects.create(employer=company, endpoint=r.url, active=False)
    file_deletion(student, django_capture_on_commit_callbacks)
    assert not WebhookDelivery.objects.exists() and r.posts == []


def test_one_active_webhook_per_company():
    company = EmployerFactory()
    webhook_for(company, "https://hr.example.jp/a")
    Webhook.objects.create(employer=company, endpoint="https://hr.example.jp/old", active=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        webhook_for(company, "https://hr.example.jp/b")


def test_endpoint_https_except_on_loopback():
    from django.core.exceptions import ValidationError

    company = EmployerFactory()
    Webhook(employer=company, endpoint="http://127.0.0.1:9/").full_clean(validate_constraints=False)
    with pytest.raises(ValidationError):
        Webhook(employer=company, endpoint="http://hr.example.jp/").full_clean(
            validate_constraints=False
        )


# Refusals, replays --------------------------------------------------------------------------
def test_a_receiver_with_another_secret_answers_401_and_the_delivery_fails_at_once(
    client, receiver, django_capture_on_commit_callbacks
):
    r = receiver(secret="not-the-one")  # noqa: S106 - a test value
    student, (company,) = student_with_recipients(("ja",))
    webhook_for(company, r.url)
    request = file_deletion(student, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert (delivery.attempts, delivery.last_status) == (1, 401)  # a 4xx is not tried again
    assert "401" in delivery.last_error and len(r.posts) == 1 and r.events == []

    client.force_login(StaffFactory())
    task = RecipientTask.objects.get(request=request)
    page = client.get(reverse("admin:disclosure_recipienttask_change", args=[task.pk]))
    assert "HTTP 401" in page.content.decode()
    page = client.get(
        reverse("admin:disclosure_webhookdelivery_changelist") + "?status__exact=failed"
    )
    assert request.reference in page.content.decode()


def test_replay_the_same_delivery_run_twice_is_sent_once_and_a_resent_event_is_dropped(
    receiver, django_capture_on_commit_callbacks
):
    r = receiver()
    student, (company,) = student_with_recipients(("ja",))
    webhook_for(company, r.url)
    file_deletion(student, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.SENT
    # A second message for the same delivery (a broker's redelivery): nothing to claim.
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"
    assert len(r.posts) == 1
    # A captured POST sent again: the receiver knows the event id and drops it.
    import requests

    captured = r.posts[0]
    answer = requests.post(r.url, data=captured["body"], headers=captured["headers"], timeout=5)
    assert answer.status_code == 200 and len(r.events) == 1
    # Its timestamp is signed: made to look fresh, the signature no longer holds.
    forged = {**captured["headers"], signing.TIMESTAMP_HEADER: str(int(time.time()) + 1)}
    assert requests.post(r.url, data=captured["body"], headers=forged, timeout=5).status_code == 401


# Timeouts and 5xx: tried again with a backoff, then failed ------------------------------------
@pytest.mark.parametrize("kind", ["timeout", "5xx", "refused"])
def test_timeouts_5xx_and_connection_errors_are_tried_again_then_fail(
    kind, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    if kind == "timeout":
        url = receiver(delay=0.6).url  # past WEBHOOK_TIMEOUT_SECONDS (0.3)
    elif kind == "5xx":
        url = receiver(status=503).url
    else:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/"  # nothing listens there
    countdowns = []
    real = services.webhook_backoff
    monkeypatch.setattr(services, "webhook_backoff", lambda n: countdowns.append(real(n)) or 0)
    student, (company,) = student_with_recipients(("ja",))
    webhook_for(company, url)
    file_deletion(student, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == 3  # WEBHOOK_MAX_ATTEMPTS
    assert countdowns == [2, 4]  # a retry after each failed attempt but the last
    if kind == "timeout":
        assert delivery.last_error == "timeout" and delivery.last_status is None
    elif kind == "5xx":
        assert delivery.last_status == 503 and "503" in delivery.last_error
    else:
        assert "ConnectionError" in delivery.last_error


def test_backoff_doubles():
    assert [webhook_backoff(n) for n in range(1, 6)] == [2, 4, 8, 16, 32]


# The sweep ------------------------------------------------------------------------------------
def test_the_sweep_queues_a_lost_message_again(receiver, django_capture_on_commit_callbacks):
    r = receiver()
    student, (company,) = student_with_recipients(("ja",))
    webhook_for(company, r.url)
    request = file_deletion(student, django_capture_on_commit_callbacks, execute=False)
    # The filing's messages were lost: the task is sent by the sweep, whose own message for
    # the delivery is lost as well.
    with django_capture_on_commit_callbacks(execute=False):
        services.recipient_task_send(task_id=RecipientTask.objects.get(request=request).pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.QUEUED and delivery.queued_at is not None
    assert requests_sweep()["webhook_deliveries"] == []  # still within the lease
    assert r.posts == []
    later = timezone.now() + lease() + timezone.timedelta(seconds=1)
    assert requests_sweep(now=later)["webhook_deliveries"] == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SENT and len(r.events) == 1
    assert requests_sweep(now=later + lease() * 2)["webhook_deliveries"] == []


def test_the_sweep_puts_back_a_delivery_whose_worker_died_while_sending(
    receiver, django_capture_on_commit_callbacks
):
    r = receiver()
    student, (company,) = student_with_recipients(("ja",))
    webhook_for(company, r.url)
    file_deletion(student, django_capture_on_commit_callbacks, execute=False)
    with django_capture_on_commit_callbacks(execute=False):
        services.recipient_task_send(task_id=RecipientTask.objects.get().pk)
    delivery = WebhookDelivery.objects.get()
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.SENDING, attempts=1, last_attempt_at=now, queued_at=None
    )
    assert requests_sweep(now=now)["webhook_deliveries"] == []  # it may still be sending
    later = now + lease() + timezone.timedelta(seconds=1)
    assert requests_sweep(now=later)["webhook_deliveries"] == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SENT and delivery.attempts == 2


# Staff ----------------------------------------------------------------------------------------
def test_the_secret_is_sealed_shown_once_and_never_again(client):
    company = EmployerFactory()
    staff = StaffFactory(is_superuser=True)
    client.force_login(staff)
    added = client.post(
        reverse("admin:disclosure_webhook_add"),
        {"employer": company.pk, "endpoint": "https://hr.example.jp/portal", "active": "on"},
    )
    webhook = Webhook.objects.get(employer=company)
    secret = webhook.secret
    assert len(secret) >= 40
    assert secret in added.content.decode() and "no-store" in added["Cache-Control"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM disclosure_webhook WHERE id = %s", [webhook.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith(SEALED_PREFIX) and secret not in raw

    for url in (
        reverse("admin:disclosure_webhook_change", args=[webhook.pk]),
        reverse("admin:disclosure_webhook_changelist"),
    ):
        page = client.get(url)
        assert page.status_code == 200 and secret not in page.content.decode()

    new = reverse("admin:disclosure_webhook_new_secret", args=[webhook.pk])
    assert client.get(new).status_code == 200
    assert Webhook.objects.get(pk=webhook.pk).secret == secret  # a GET changes nothing
    shown = client.post(new).content.decode()
    renewed = Webhook.objects.get(pk=webhook.pk).secret
    assert renewed != secret and renewed in shown
    assert AuditEntry.objects.filter(name="disclosure.new_webhook_secret").count() == 1
    page = client.get(reverse("admin:disclosure_webhook_change", args=[webhook.pk]))
    assert renewed not in page.content.decode()

    reader = StaffFactory(is_superuser=False)
    client.force_login(reader)
    assert client.post(new).status_code == 403
    assert Webhook.objects.get(pk=webhook.pk).secret == renewed


def test_deliver_again_requeues_a_failed_one_and_is_audited(
    client, receiver, django_capture_on_commit_callbacks
):
    r = receiver(status=404)
    student, (company,) = student_with_recipients(("ja",))
    webhook = webhook_for(company, r.url)
    request = file_deletion(student, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.FAILED and delivery.last_status == 404

    client.force_login(StaffFactory(is_superuser=True))
    page = client.get(reverse("admin:disclosure_webhook_change", args=[webhook.pk]))
    text = page.content.decode()
    assert request.reference in text and "HTTP 404" in text  # its recent deliveries

    r.status = 200  # the company fixed its receiver
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            reverse("admin:disclosure_webhookdelivery_changelist"),
            {"action": "deliver_again", "_selected_action": [delivery.pk]},
        )
    assert answer.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SENT and delivery.last_status == 200
    assert len(r.events) == 1
    entry = AuditEntry.objects.get(name="disclosure.webhook_deliver_again")
    assert entry.target_id == str(delivery.pk)

    # A sent one is not delivered again.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:disclosure_webhookdelivery_changelist"),
            {"action": "deliver_again", "_selected_action": [delivery.pk]},
        )
    assert AuditEntry.objects.filter(name="disclosure.webhook_deliver_again").count() == 1
    assert len(r.posts) == 2

    # Without the permission, no such action.
    client.force_login(StaffFactory(is_superuser=False))
    client.post(
        reverse("admin:disclosure_webhookdelivery_changelist"),
        {"action": "deliver_again", "_selected_action": [delivery.pk]},
    )
    assert AuditEntry.objects.filter(name="disclosure.webhook_deliver_again").count() == 1


def test_another_employers_task_never_goes_to_this_webhook(
    receiver, django_capture_on_commit_callbacks
):
    r, other_r = receiver(), receiver(secret="other-secret")  # noqa: S106 - a test value
    student, (company, other) = student_with_recipients(("ja", "en"))
    webhook_for(company, r.url)
    webhook_for(other, other_r.url, secret="other-secret")  # noqa: S106 - a test value
    request = file_deletion(student, django_capture_on_commit_callbacks)
    assert [e["request"]["reference"] for e in r.events] == [request.reference]
    assert [e["request"]["reference"] for e in other_r.events] == [request.reference]
    mine = WebhookDelivery.objects.get(webhook__employer=company)
    theirs = WebhookDelivery.objects.get(webhook__employer=other)
    assert mine.task.employer == company and theirs.task.employer == other
    assert r.events[0]["id"] != other_r.events[0]["id"]


# With a real worker and broker (the PostgreSQL + Redis pass) -------------------------------------
def _with_a_real_worker(test):
    for mark in REAL_WORKER_MARKS:
        test = mark(test)
    return test


@_with_a_real_worker
def test_a_real_worker_delivers_after_a_503_with_a_real_backoff(worker, receiver):  # noqa: F811
    """Filed in a committed transaction, sent by a real worker, whose first POST gets a 503:
    the retry comes after the backoff (2 s), signed afresh, with the same event id."""
    r = receiver(fail_first=1)
    student, (company,) = student_with_recipients(("ja",))
    webhook_for(company, r.url)
    request_file(student=student, kind=DataRequest.Kind.DELETION)
    wait_until(
        lambda: WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SENT).exists(),
        "the webhook delivery sent",
        worker=worker,
    )
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 2 and delivery.last_status == 200
    assert len(r.posts) == 2 and len(r.events) == 1
    first, second = (post["headers"] for post in r.posts)
    assert first[EVENT_HEADER] == second[EVENT_HEADER] == str(delivery.event_id)
    assert int(second[signing.TIMESTAMP_HEADER]) - int(first[signing.TIMESTAMP_HEADER]) >= 1
