"""The roles again (backoffice.roles.ROLES), now with Support reading companies' webhooks,
their deliveries and digests, and Privacy officers switching webhooks and delivering a
failed push again (issue 19): the same function as 0001."""

from importlib import import_module

from django.db import migrations

roles_create = import_module("backoffice.migrations.0001_roles").roles_create


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0005_roles_workspace"),
        ("disclosure", "0010_delivery_preference"),
    ]

    operations = [migrations.RunPython(roles_create, migrations.RunPython.noop)]
