"""The demo's own tables: which ones a reset empties, and locking them while the demo loads.

The generic bulk-loading tools (COPY, id ranges, deferred indexes) are in `crm.pg.bulk`.
"""

from __future__ import annotations

from django.apps import apps
from django.db import connection

DEMO_APPS = ("customers", "sales")


def demo_tables() -> list[str]:
    """Tables of the customers and sales apps (with their many-to-many tables) and the stores."""
    # The stores live in crm (the core) but are demo data like the sales hung on them.
    tables: list[str] = [apps.get_model("crm", "Store")._meta.db_table]
    for label in DEMO_APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            if not model._meta.proxy and model._meta.managed:
                tables.append(model._meta.db_table)
    return sorted(set(tables))


def truncate_demo_tables() -> None:
    """Empty customers, sales and the contact log, restarting their ids.

    CASCADE also empties rows elsewhere that point at them (staff store assignments, POS keys,
    computed metrics, campaign recipients): they described the data being wiped.
    """
    quoted = ", ".join(connection.ops.quote_name(t) for t in demo_tables())
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")  # noqa: S608 - own table names


def lock_demo_tables() -> None:
    """Keep other writers out while we check emptiness and load, so ids and codes stay ours."""
    quoted = ", ".join(connection.ops.quote_name(t) for t in demo_tables())
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE")  # noqa: S608
