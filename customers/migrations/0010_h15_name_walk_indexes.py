"""The folded-name indexes carry the ranked page's tie order (surname, id), so name search walks
a surname or a first name in that order and stops at the page instead of sorting every card.

Built concurrently, so that cards can be written meanwhile: the new index first, then the old
one goes. Not atomic, as CREATE INDEX CONCURRENTLY requires.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

import customers.folding


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0009_h15_name_tokens"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="customer",
            index=models.Index(
                customers.folding.Fold("surname"),
                customers.folding.Fold("first_name"),
                "surname",
                "id",
                name="customer_name_walk",
            ),
        ),
        RemoveIndexConcurrently(model_name="customer", name="customer_fold_names"),
        AddIndexConcurrently(
            model_name="customer",
            index=models.Index(
                customers.folding.Fold("first_name"),
                "surname",
                "id",
                name="customer_first_name_walk",
            ),
        ),
        RemoveIndexConcurrently(model_name="customer", name="customer_first_fold"),
    ]
