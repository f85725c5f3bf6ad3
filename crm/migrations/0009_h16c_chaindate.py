"""ChainDate moves from campaigns to crm (the chain's calendar, crm.calendar), keeping its table:
the state changes, the database does not."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0008_h16a_store_moves_to_crm"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ChainDate",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200, verbose_name="name")),
                        (
                            "month",
                            models.PositiveSmallIntegerField(
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(12),
                                ],
                                verbose_name="month",
                            ),
                        ),
                        (
                            "day",
                            models.PositiveSmallIntegerField(
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(31),
                                ],
                                verbose_name="day",
                            ),
                        ),
                        (
                            "store",
                            models.ForeignKey(
                                blank=True,
                                help_text="Only this store's customers; empty for the whole chain.",
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="chain_dates",
                                to="crm.store",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "chain date",
                        "verbose_name_plural": "chain dates",
                        "ordering": ["month", "day", "name"],
                        "db_table": "campaigns_chaindate",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
