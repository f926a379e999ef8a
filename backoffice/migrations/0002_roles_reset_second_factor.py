"""The roles again (backoffice.roles.ROLES), now with `portal.reset_second_factor` for the
Privacy officer: the same function as 0001, which makes the new permission first."""

from importlib import import_module

from django.db import migrations

roles_create = import_module("backoffice.migrations.0001_roles").roles_create


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0001_roles"),
        ("portal", "0006_user_reset_second_factor"),
    ]

    operations = [migrations.RunPython(roles_create, migrations.RunPython.noop)]
