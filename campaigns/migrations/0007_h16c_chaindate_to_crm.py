"""ChainDate moves to crm (crm.0009_h16c_chaindate) keeping its table: campaigns forgets the
model and its foreign key points at crm's, in the state only. Its content type moves too, so
the roles' permissions on chain dates and the admin's history of them stay attached."""

import django.db.models.deletion
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    old = ContentType.objects.filter(app_label="campaigns", model="chaindate").first()
    if old is None:
        return  # never created (content types come with the first permissions)
    # A crm row made meanwhile only holds fresh default permissions, granted to nobody: the
    # old row carries the grants, so it wins.
    ContentType.objects.filter(app_label="crm", model="chaindate").delete()
    old.app_label = "crm"
    old.save(update_fields=["app_label"])


def restore_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="crm", model="chaindate").update(app_label="campaigns")


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_h16a_store_in_crm"),
        ("crm", "0009_h16c_chaindate"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="campaign",
                    name="chain_date",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="A date of the chain's own calendar, instead of a public holiday.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="campaigns",
                        to="crm.chaindate",
                        verbose_name="chain date",
                    ),
                ),
                migrations.DeleteModel(name="ChainDate"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_type, restore_content_type),
    ]
