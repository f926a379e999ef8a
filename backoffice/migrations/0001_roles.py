"""The two staff groups, Support and Privacy officer, each with exactly the permissions
`backoffice.roles.ROLES` lists."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from backoffice.roles import ROLES, roles_apply


def _create_every_permission(apps) -> None:
    # On a fresh database permissions are made by post_migrate, after every migration: make
    # them now so the groups can hold them. Idempotent.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def roles_create(apps, schema_editor):
    _create_every_permission(apps)
    roles_apply(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
    )


def roles_remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("portal", "0003_employer_contacts"),
        ("audit", "0002_append_only_trigger"),
        ("consent", "0006_staff_permissions"),
        ("disclosure", "0002_staff_permissions"),
    ]

    operations = [migrations.RunPython(roles_create, roles_remove)]
