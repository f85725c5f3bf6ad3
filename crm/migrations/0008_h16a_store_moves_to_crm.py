"""`Store` moves from `sales` to `crm`, the core every app stands on; the table stays `sales_store`.

Only Django's model state changes: the database keeps its table, rows and constraints. The
content type is renamed rather than recreated, so the roles' store permissions and the admin
log keep pointing at the same rows.
"""

import timezone_field.fields
from django.db import migrations, models


def content_type_to_crm(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="sales", model="store").update(app_label="crm")


def content_type_to_sales(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="crm", model="store").update(app_label="sales")


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0007_alter_auditevent_action"),
        ("sales", "0007_i12b_pos_key_kind"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Store",
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
                        ("code", models.SlugField(max_length=32, unique=True, verbose_name="code")),
                        ("name", models.CharField(max_length=200, verbose_name="name")),
                        ("city", models.CharField(blank=True, max_length=100, verbose_name="city")),
                        (
                            "address",
                            models.CharField(blank=True, max_length=300, verbose_name="address"),
                        ),
                        (
                            "timezone",
                            timezone_field.fields.TimeZoneField(
                                default="Europe/Moscow", verbose_name="time zone"
                            ),
                        ),
                        (
                            "currency",
                            models.CharField(default="RUB", max_length=3, verbose_name="currency"),
                        ),
                        (
                            "opened_on",
                            models.DateField(blank=True, null=True, verbose_name="opened on"),
                        ),
                        ("is_active", models.BooleanField(default=True, verbose_name="active")),
                    ],
                    options={
                        "verbose_name": "store",
                        "verbose_name_plural": "stores",
                        "ordering": ["name"],
                        "db_table": "sales_store",
                    },
                ),
                migrations.AlterField(
                    model_name="staffprofile",
                    name="stores",
                    field=models.ManyToManyField(blank=True, related_name="staff", to="crm.store"),
                ),
            ],
        ),
        migrations.RunPython(content_type_to_crm, content_type_to_sales),
    ]
