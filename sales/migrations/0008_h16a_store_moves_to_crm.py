"""`Store` leaves sales for crm (`crm/0008`); state only, the table `sales_store` stays."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0008_h16a_store_moves_to_crm"),
        ("sales", "0007_i12b_pos_key_kind"),
        # Every foreign key to the store leaves `sales.store` before the model leaves sales.
        ("customers", "0008_h16a_store_in_crm"),
        ("campaigns", "0006_h16a_store_in_crm"),
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
    ]
