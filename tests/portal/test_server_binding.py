"""The cursor that binds on the server (portal/shared/server_binding.py): its parameters go
apart from the statement, and it behaves as Django's own cursors do otherwise (counted,
inside the transaction, Django's errors)."""

import psycopg
import pytest
from django.conf import settings
from django.db import ProgrammingError, connection
from django.test.utils import CaptureQueriesContext

from portal.models import Employer
from portal.shared.server_binding import server_bound_cursor
from tests.factories import EmployerFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="needs PostgreSQL (CI's second pass): binding on the server is psycopg's",
    ),
]

TABLE = Employer._meta.db_table


def test_its_parameters_go_apart_from_the_statement():
    with server_bound_cursor() as cursor:
        # psycopg's server-binding cursor, not the ClientCursor Django uses, which writes
        # the values into the statement's text.
        assert type(cursor.cursor) is psycopg.Cursor
        assert not isinstance(cursor.cursor, psycopg.ClientCursor)
        cursor.execute("SELECT %s::int[] || %s::int[]", ["{1,2}", "{3}"])
        assert cursor.fetchone() == ([1, 2, 3],)


def test_it_sees_the_transaction_and_is_counted():
    employer = EmployerFactory(name="未コミットの会社")  # not committed: the test's transaction
    with CaptureQueriesContext(connection) as queries:
        with server_bound_cursor() as cursor:
            cursor.execute(f"SELECT name FROM {TABLE} WHERE id = %s", [employer.pk])  # noqa: S608
            assert cursor.fetchone() == ("未コミットの会社",)
    assert len(queries) == 1 and TABLE in queries[0]["sql"]


def test_an_error_is_djangos():
    with pytest.raises(ProgrammingError):
        with server_bound_cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table WHERE id = %s", [1])


def test_the_consent_check_sends_its_one_statement_through_it(client, settings):
    from consent.api.keys import api_key_create

    _client, key = api_key_create(name="binding")
    body = {
        "checks": [
            {"student": f"00000000-0000-4000-8000-{n:012d}", "employer": n + 1, "purpose": "p"}
            for n in range(3)
        ]
    }
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/v1/consents/check",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
    assert response.status_code == 200, response.content
    assert [r["reason"] for r in response.json()["results"]] == ["unknown_student"] * 3
    assert sum("unnest(" in q["sql"] for q in queries.captured_queries) == 1
