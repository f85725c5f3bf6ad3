"""ChainDate moves to crm (crm.0009_h16c_chaindate) keeping its table: campaigns forgets the
model and its foreign key points at crm's, in the state only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_h16a_store_in_crm"),
        ("crm", "0009_h16c_chaindate"),
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
    ]
