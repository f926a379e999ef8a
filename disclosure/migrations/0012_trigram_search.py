"""A trigram index for a part of a request's reference typed into a search (issue 20):
PostgreSQL only, created concurrently, nothing on SQLite (portal/shared/trigram.py)."""

from django.db import migrations

from portal.shared.trigram import AddTrigramIndex


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY: the table stays writable while it runs

    dependencies = [
        ("disclosure", "0011_report_csv"),
        ("portal", "0016_trigram_search"),  # pg_trgm
    ]

    operations = [AddTrigramIndex("datarequest", "reference", "datarequest_reference_trgm")]
