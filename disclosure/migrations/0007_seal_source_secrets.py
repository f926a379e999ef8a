"""Seal the data sources' signing secrets (they were kept in clear): the field seals what it
writes and reads a clear value as it is, so saving each row again seals it."""

import disclosure.models
import portal.shared.fields

from django.db import migrations


def seal_stored(apps, schema_editor):
    DataSource = apps.get_model("disclosure", "DataSource")
    for source in DataSource.objects.all():
        source.save(update_fields=["secret"])


class Migration(migrations.Migration):
    dependencies = [
        ("disclosure", "0006_api_answers_changed_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="datasource",
            name="secret",
            field=portal.shared.fields.SealedCharField(
                default=disclosure.models._source_secret,
                editable=False,
                max_length=400,
                purpose="data sources",
                verbose_name="signing secret",
            ),
        ),
        migrations.RunPython(seal_stored, migrations.RunPython.noop),
    ]
