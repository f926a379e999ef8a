# The single contact of each employer was copied into a primary PrivacyContact by 0003;
# messages now go to the contacts, so the old columns go.

from django.db import migrations, models


def restore_single_contact(apps, schema_editor):
    """Going back: each employer's primary contact fills the columns again."""
    Employer = apps.get_model("portal", "Employer")
    PrivacyContact = apps.get_model("portal", "PrivacyContact")
    for contact in PrivacyContact.objects.filter(is_primary=True).iterator():
        Employer.objects.filter(pk=contact.employer_id).update(
            privacy_contact_name=contact.name,
            privacy_contact_email=contact.email,
            language=contact.language,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_employer_contacts"),
    ]

    operations = [
        # Defaults only so that going back can add the columns to existing rows.
        migrations.AlterField(
            model_name="employer",
            name="privacy_contact_name",
            field=models.CharField(default="", max_length=200, verbose_name="privacy contact"),
        ),
        migrations.AlterField(
            model_name="employer",
            name="privacy_contact_email",
            field=models.EmailField(
                default="", max_length=254, verbose_name="privacy contact email"
            ),
        ),
        migrations.RunPython(migrations.RunPython.noop, restore_single_contact),
        migrations.RemoveField(model_name="employer", name="privacy_contact_name"),
        migrations.RemoveField(model_name="employer", name="privacy_contact_email"),
        migrations.RemoveField(model_name="employer", name="language"),
        migrations.AlterField(
            model_name="employer",
            name="is_active",
            field=models.BooleanField(
                default=True,
                help_text=(
                    "An inactive company can no longer receive consents. It is still sent "
                    "requests and notices about the data it already received."
                ),
                verbose_name="active",
            ),
        ),
    ]
