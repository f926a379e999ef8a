"""Trigram indexes for the audit log's and the staff reads' search boxes (issue 20):
PostgreSQL only, created concurrently, nothing on SQLite (portal/shared/trigram.py)."""

from django.db import migrations

from portal.shared.trigram import AddTrigramIndex


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY: the tables stay writable while they run

    dependencies = [
        ("audit", "0004_workspace"),
        ("portal", "0016_trigram_search"),  # pg_trgm
    ]

    operations = [
        AddTrigramIndex("auditentry", "actor_label", "auditentry_actor_label_trgm"),
        AddTrigramIndex("auditentry", "target_repr", "auditentry_target_repr_trgm"),
        AddTrigramIndex("auditentry", "target_id", "auditentry_target_id_trgm"),
        AddTrigramIndex("auditentry", "name", "auditentry_name_trgm"),
        AddTrigramIndex("auditentry", "reason", "auditentry_reason_trgm"),
        AddTrigramIndex("staffread", "staff_label", "staffread_staff_label_trgm"),
        AddTrigramIndex("staffread", "label", "staffread_label_trgm"),
        AddTrigramIndex("staffread", "reason", "staffread_reason_trgm"),
    ]
