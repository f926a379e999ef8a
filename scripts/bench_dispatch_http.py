"""scripts/bench_dispatch.py's filing over HTTP: students signed in and just
re-authenticated, each posting the request form to gunicorn, one client after another and
several at once. Imported by it once Django is set up."""

import http.client
import os
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from bench_dispatch_processes import start_gunicorn
from benchlib import Sink, stop
from django.conf import settings
from django.test import Client, RequestFactory

from portal.models import User
from tests.ports import free_port

FORM = {"kind": "deletion", "scope": "all", "delivery_format": "pdf_json", "message": ""}


def signed_in(students: list[User]) -> dict[int, str]:
    """A session cookie for each student, signed in and just re-authenticated (the form asks
    for a sign-in within ACCOUNT_REAUTHENTICATION_TIMEOUT)."""
    from allauth.account.internal.flows.login import record_authentication
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, make_password

    # A usable password, or allauth has no way to re-authenticate them; one hash for all.
    unusable = User.objects.filter(
        pk__in=[s.pk for s in students], password__startswith=UNUSABLE_PASSWORD_PREFIX
    )
    if unusable.exists():
        unusable.update(password=make_password(uuid.uuid4().hex))
    cookies = {}
    for student in User.objects.filter(pk__in=[s.pk for s in students]):
        client = Client()
        client.force_login(student)
        session = client.session
        request = RequestFactory().get("/")
        request.session, request.user = session, student
        record_authentication(
            request, student, "password", email=student.email, reauthenticated=True
        )
        session.save()
        cookies[student.pk] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return cookies


def post_filing(port: int, session: str, tag: str = "-") -> float:
    """POST the request form as a browser would (the CSRF cookie and its token); the round
    trip's seconds. `tag` names the request in gunicorn's access log (server_times)."""
    csrf = uuid.uuid4().hex  # any 32 characters of a-zA-Z0-9 is a valid CSRF secret
    body = urlencode({**FORM, "csrfmiddlewaretoken": csrf}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}",
        "Accept-Language": "ja",
        "X-Bench": tag,
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request("POST", "/requests/new/", body=body, headers=headers)
        response = conn.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    location = response.getheader("Location") or ""
    if response.status != 302 or "/requests/R-" not in location:
        raise RuntimeError(
            f"filing answered {response.status} {location!r}: "
            + content[:500].decode(errors="replace")
        )
    return elapsed


def get_healthz(port: int, session: str, tag: str = "-") -> float:
    """GET /healthz with the student's session: the web's floor (gunicorn, the middleware,
    the session and the user, a database query and a broker ping); the round trip's seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request(
            "GET",
            "/healthz",
            headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}", "X-Bench": tag},
        )
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"/healthz answered {response.status}")
    return elapsed


def filing_sql(session: str, replays: int) -> tuple[int, list[float]]:
    """The database's floor: one filing made in this process through the test client (the
    same view, rolled back), its statements captured as they were sent, then replayed raw,
    each replay one transaction rolled back. Returns the statements' count and the replays'
    seconds."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/requests/new/", FORM, HTTP_ACCEPT_LANGUAGE="ja", HTTP_HOST="127.0.0.1"
        )
        if response.status_code != 302 or "/requests/R-" not in response["Location"]:
            raise RuntimeError(f"in-process filing answered {response.status_code}")
        transaction.set_rollback(True)
    statements = [q["sql"] for q in queries.captured_queries]
    replayed = []
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own: no Django between the text and the server
        for _ in range(replays):
            with transaction.atomic():
                started = time.perf_counter()
                for sql in statements:
                    raw.execute(sql)
                replayed.append(time.perf_counter() - started)
                transaction.set_rollback(True)
    return len(statements), replayed


def server_times(access_log: Path, tags: list[str], timeout: float = 30) -> list[float]:
    """Each tagged request's own time in gunicorn, in seconds, from its access log, read
    whole each time (a line is written just after its response, so the last may lag)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {}
        for line in access_log.read_text().splitlines():
            tag, _status, micros = line.split(" ")
            found[tag] = int(micros) / 1_000_000
        if all(tag in found for tag in tags):
            return [found[tag] for tag in tags]
        if time.monotonic() > deadline:
            missing = [tag for tag in tags if tag not in found]
            raise RuntimeError(f"gunicorn logged no line for {len(missing)}: {missing[:5]}")
        time.sleep(0.05)


def bench_filing(
    students: list[User],
    sink: Sink,
    *,
    sequential: int,
    clients: int,
    web_workers: int,
    logs: Path,
) -> dict:
    port = free_port()
    access_log = logs / f"gunicorn-access-{port}.log"
    server = start_gunicorn(port, web_workers, logs / "gunicorn.log", access_log)
    results = {}
    try:
        cookies = signed_in(students)
        # Warm-up: each gunicorn worker's first requests load what the later ones reuse.
        warm = 2 * web_workers
        for student in students[:warm]:
            post_filing(port, cookies[student.pk])
        first = students[warm : warm + sequential]
        rest = students[warm + sequential :]

        loads, emails_before = [os.getloadavg()[0]], sink.count()
        started = time.perf_counter()
        tags = [f"filing-{n}" for n in range(len(first))]
        timings = [post_filing(port, cookies[s.pk], t) for s, t in zip(first, tags, strict=True)]
        elapsed = time.perf_counter() - started
        loads.append(os.getloadavg()[0])
        results["sequential"] = (timings, elapsed, sink.count() - emails_before, loads)
        # Its parts, measured right after, with the worker still dispatching: the web's floor
        # over the same gunicorn, and the same filing's statements as raw SQL.
        spare = rest.pop()
        floor_tags = [f"healthz-{n}" for n in range(len(first))]
        results["healthz"] = [get_healthz(port, cookies[spare.pk], tag) for tag in floor_tags]
        results["server"] = server_times(access_log, tags)
        results["healthz_server"] = server_times(access_log, floor_tags)
        results["sql"] = filing_sql(cookies[spare.pk], len(first))

        shares = [rest[n::clients] for n in range(clients)]
        concurrent: list[float] = []
        errors: list[BaseException] = []

        def run(share: list[User]) -> None:
            try:
                for student in share:
                    concurrent.append(post_filing(port, cookies[student.pk]))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(share,)) for share in shares]
        loads, emails_before = [os.getloadavg()[0]], sink.count()
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        loads.append(os.getloadavg()[0])
        if errors:
            raise errors[0]
        results["concurrent"] = (concurrent, elapsed, sink.count() - emails_before, loads)
    finally:
        stop(server)
    return results
