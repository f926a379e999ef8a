"""Trigram indexes for the admin's "contains" searches (issue 20): PostgreSQL only, created
concurrently, nothing on SQLite (portal/shared/trigram.py)."""

from django.db import migrations

from portal.shared.trigram import AddTrigramIndex, TrigramExtension


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY: the tables stay writable while it runs

    dependencies = [("portal", "0015_email_erase_when_done")]

    operations = [
        TrigramExtension(),
        AddTrigramIndex("user", "email", "user_email_trgm"),
        AddTrigramIndex("user", "display_name", "user_display_name_trgm"),
        AddTrigramIndex("employer", "name", "employer_name_trgm"),
        AddTrigramIndex("employer", "name_en", "employer_name_en_trgm"),
        AddTrigramIndex("privacycontact", "email", "privacycontact_email_trgm"),
        AddTrigramIndex("emailmessage", "to", "emailmessage_to_trgm"),
        AddTrigramIndex("emailmessage", "subject", "emailmessage_subject_trgm"),
    ]
