"""The roles again (backoffice.roles.ROLES), now with the Privacy officer reading staff looks
at students' data (audit.StaffRead): the same function as 0001."""

from importlib import import_module

from django.db import migrations

roles_create = import_module("backoffice.migrations.0001_roles").roles_create


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0003_roles_data_sources"),
        ("audit", "0003_staff_reads"),
    ]

    operations = [migrations.RunPython(roles_create, migrations.RunPython.noop)]
