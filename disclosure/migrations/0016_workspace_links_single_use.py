"""Workspace links become single-use (docs/companies.md, "Getting in").

`last_used_at` becomes `used_at`: a link used before this migration counts as used, so it no
longer signs a browser in (a session it opened goes on as before). Each link says where it
came from; one made for a digest is the one made without a "sent" event
(`workspace_link_send` records one with every link it makes, the digest never did)."""

from django.db import migrations, models


def mark_digest_links(apps, schema_editor):
    WorkspaceLink = apps.get_model("disclosure", "WorkspaceLink")
    WorkspaceLink.objects.exclude(events__kind="sent").update(origin="digest")


class Migration(migrations.Migration):
    dependencies = [
        ("disclosure", "0015_fewer_indexes"),
    ]

    operations = [
        migrations.RenameField(
            model_name="workspacelink",
            old_name="last_used_at",
            new_name="used_at",
        ),
        migrations.AlterField(
            model_name="workspacelink",
            name="used_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="used"),
        ),
        migrations.AddField(
            model_name="workspacelink",
            name="origin",
            field=models.CharField(
                choices=[("asked", "an email a contact asked for"), ("digest", "a digest")],
                default="asked",
                max_length=8,
                verbose_name="sent in",
            ),
        ),
        migrations.AlterField(
            model_name="workspaceevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("sent", "link sent"),
                    ("signed_in", "signed in"),
                    ("answered", "answered tasks"),
                    ("revoked", "link revoked by staff"),
                    ("replaced", "link replaced by a newer digest"),
                    ("delivery", "changed how requests are delivered"),
                ],
                max_length=12,
                verbose_name="what happened",
            ),
        ),
        migrations.RunPython(mark_digest_links, migrations.RunPython.noop),
    ]
