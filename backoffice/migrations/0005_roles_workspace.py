"""The roles again (backoffice.roles.ROLES), now with Support reading companies' workspace
links and what was done with them (issue 19): the same function as 0001."""

from importlib import import_module

from django.db import migrations

roles_create = import_module("backoffice.migrations.0001_roles").roles_create


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0004_roles_staff_reads"),
        ("disclosure", "0008_workspace"),
    ]

    operations = [migrations.RunPython(roles_create, migrations.RunPython.noop)]
