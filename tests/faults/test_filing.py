"""Scenario 6: the filing form posted twice at once from the same session (a double click,
a browser retrying): one request is filed, the other post is told it exists, and every
company is written to once."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from disclosure.models import DataRequest, RecipientTask
from tests.faults.flows import (
    FORM,
    assert_each_company_once,
    english_browser,
    signed_in,
    staff_rows,
    student_and_companies,
    student_received,
    student_states,
)
from tests.faults.harness import received_counts, wait_until
from tests.workers import REAL_WORKER_MARKS

pytestmark = [*REAL_WORKER_MARKS, pytest.mark.faults]


def test_the_form_posted_twice_at_once_files_one_request(stack, smtp, staff_client):
    student, employers, addresses = student_and_companies()
    worker = stack.worker()
    browser = signed_in(student)
    # Two tabs of one browser: the same session cookie, each post on its own connection.
    tabs = [english_browser(), english_browser()]
    for tab in tabs:
        tab.cookies = browser.cookies
    barrier = threading.Barrier(len(tabs))
    responses: list = [None] * len(tabs)

    def post(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            responses[index] = tabs[index].post(reverse("disclosure:request_new"), FORM)
        finally:
            connection.close()  # this thread's own database connection

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(tabs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    [filed] = DataRequest.objects.filter(student=student)
    assert RecipientTask.objects.filter(request=filed).count() == len(employers)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 302], statuses
    [accepted] = [r for r in responses if r.status_code == 302]
    [refused] = [r for r in responses if r.status_code == 200]
    assert accepted["Location"] == reverse("disclosure:request_detail", args=[filed.reference])
    html = refused.content.decode()
    assert f"You already have the same request open ({filed.reference})" in html
    assert reverse("disclosure:request_detail", args=[filed.reference]) in html

    wait_until(
        lambda: (
            len(received_counts(smtp, addresses)) == len(addresses)
            and student_received(smtp, student, filed.reference) >= 1
        ),
        "every company's email",
        processes=(worker,),
    )
    assert_each_company_once(smtp, filed, addresses)
    assert student_received(smtp, student, filed.reference) == 1
    assert student_states(browser, filed) == {
        "Sent; waiting for the company's answer": len(employers)
    }
    rows = staff_rows(staff_client, filed)
    assert all(row.split()[0] == "sent," for row in rows.values()), rows
