from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0004_remove_employer_single_contact"),
    ]

    operations = [
        migrations.AddField(
            model_name="emailmessage",
            name="cc",
            field=models.JSONField(blank=True, default=list, verbose_name="cc"),
        ),
        migrations.AlterField(
            model_name="emailmessage",
            name="to",
            field=models.EmailField(blank=True, max_length=254, verbose_name="to"),
        ),
    ]
