"""The roles again (backoffice.roles.ROLES), now with Support reading the register of
inferences and answering disputes, and Privacy officers registering and activating models
(issue 21): the same function as 0001."""

from importlib import import_module

from django.db import migrations

roles_create = import_module("backoffice.migrations.0001_roles").roles_create


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0006_roles_webhooks_digests"),
        ("inferences", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_create, migrations.RunPython.noop)]
