"""Seal the second factors' secrets stored before allauth's MFA adapter sealed them (issue
17): the TOTP secret and the recovery codes' seed (and codes migrated from an older format),
which would otherwise let a reader of the table or a backup make valid codes."""

from django.db import migrations


def _seal(value, seal_text, prefix):
    if isinstance(value, str) and not value.startswith(prefix):
        return seal_text(value)
    return value


def seal_stored(apps, schema_editor):
    from portal.shared.sealing import SEALED_PREFIX, seal_text

    Authenticator = apps.get_model("mfa", "Authenticator")
    for authenticator in Authenticator.objects.filter(type__in=["totp", "recovery_codes"]):
        data = dict(authenticator.data)
        for field in ("secret", "seed"):
            if field in data:
                data[field] = _seal(data[field], seal_text, SEALED_PREFIX)
        if isinstance(data.get("migrated_codes"), list):
            data["migrated_codes"] = [
                _seal(code, seal_text, SEALED_PREFIX) for code in data["migrated_codes"]
            ]
        if data != authenticator.data:
            Authenticator.objects.filter(pk=authenticator.pk).update(data=data)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0011_seal_stored_secrets"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(seal_stored, migrations.RunPython.noop)]
