"""Favourite categories move from CustomerMetrics to a table of their own.

Existing lists are copied over (customers with none get no row), so the next nightly run keeps
reusing them for customers whose history has not changed.
"""

import django.db.models.deletion
from django.db import migrations, models

COPY = """
INSERT INTO analytics_favouritecategories (customer_id, categories, computed_at)
SELECT customer_id, favourite_categories, computed_at FROM analytics_customermetrics
WHERE favourite_categories <> '[]'::jsonb
"""
COPY_BACK = """
UPDATE analytics_customermetrics m SET favourite_categories = f.categories
FROM analytics_favouritecategories f WHERE f.customer_id = m.customer_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0008_bigint_sum"),
        ("customers", "0003_customer_name_order"),
    ]

    operations = [
        migrations.CreateModel(
            name="FavouriteCategories",
            fields=[
                (
                    "customer",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="favourite_categories",
                        serialize=False,
                        to="customers.customer",
                    ),
                ),
                ("categories", models.JSONField(default=list, verbose_name="categories")),
                ("computed_at", models.DateTimeField(verbose_name="computed at")),
            ],
            options={
                "verbose_name": "favourite categories",
                "verbose_name_plural": "favourite categories",
            },
        ),
        migrations.RunSQL(COPY, COPY_BACK),
        migrations.RemoveField(model_name="customermetrics", name="favourite_categories"),
    ]
