"""The roles again (backoffice.roles.ROLES), now reading the site's own systems
(disclosure.DataSource, SourceTask): the same function as 0001."""

from importlib import import_module

from django.db import migrations

roles_create = import_module("backoffice.migrations.0001_roles").roles_create


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0002_roles_reset_second_factor"),
        ("disclosure", "0004_data_sources"),
    ]

    operations = [migrations.RunPython(roles_create, migrations.RunPython.noop)]
