"""The ledger's indexes by return and by source hold only the rows that name one.

Earn, redeem and adjust rows (most of the ledger) name neither, and each still wrote an entry
into both indexes; every look-up (and the foreign-key checks of a deleted return or entry) is by
a value, which the partial indexes serve. Built first, concurrently, then the old ones go, so a
running chain's tills keep booking while it runs (not atomic, as CONCURRENTLY requires).
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("loyalty", "0004_lead_account_fillfactor")]

    operations = [
        AddIndexConcurrently(
            model_name="entry",
            index=models.Index(
                condition=models.Q(return_doc__isnull=False),
                fields=["return_doc"],
                name="loyalty_entry_return_partial",
            ),
        ),
        AddIndexConcurrently(
            model_name="entry",
            index=models.Index(
                condition=models.Q(source__isnull=False),
                fields=["source"],
                name="loyalty_entry_source_partial",
            ),
        ),
        RemoveIndexConcurrently(model_name="entry", name="loyalty_entry_return"),
        RemoveIndexConcurrently(model_name="entry", name="loyalty_entry_source"),
    ]
