"""`Store` leaves sales for crm (`crm/0008`); state only, the table `sales_store` stays."""

import django.db.models.deletion
from django.db import migrations, models


def forget_recreated_content_type(apps, schema_editor):
    # crm/0008 renamed the store's content type to crm. A data migration that runs between
    # crm/0008 and this one (`crm.roles.create_permissions_now`) still sees `sales.Store` in
    # the state and recreates a `sales.store` type with fresh, ungranted permissions: stale now.
    ContentType = apps.get_model("contenttypes", "ContentType")
    if ContentType.objects.filter(app_label="crm", model="store").exists():
        ContentType.objects.filter(app_label="sales", model="store").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0008_h16a_store_moves_to_crm"),
        ("sales", "0007_i12b_pos_key_kind"),
        # Every foreign key to the store leaves `sales.store` before the model leaves sales.
        ("customers", "0008_h16a_store_in_crm"),
        ("campaigns", "0006_h16a_store_in_crm"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="receipt",
                    name="store",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="receipts",
                        to="crm.store",
                    ),
                ),
                migrations.AlterField(
                    model_name="return",
                    name="store",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="returns",
                        to="crm.store",
                    ),
                ),
                migrations.AlterField(
                    model_name="posapikey",
                    name="store",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="pos_keys",
                        to="crm.store",
                    ),
                ),
                migrations.DeleteModel(
                    name="Store",
                ),
            ],
        ),
        migrations.RunPython(forget_recreated_content_type, migrations.RunPython.noop),
    ]
