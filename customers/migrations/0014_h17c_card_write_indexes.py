"""Fewer index writes per new card (issue 17: an import of 100,000 customers).

- The name dictionary's trigram index takes new names through a pending list again, capped at
  256 kB (migration 0011 had turned it off because the default 4 MB list, left by a bulk load,
  tripled every search probe). Written directly, each new surname cost a GIN descent per
  trigram inside the card INSERT's trigger: a fifth of the database's work in a first import,
  where every surname is new. The statement that passes the cap merges the list in one sorted
  pass; a search reads at most those 32 pages, and names are searchable as soon as they commit.
- The assigned manager's foreign-key index duplicated Meta's `customer_manager`, and a consent
  row's customer index is the leading column of `consent_history`.
- The `varchar_pattern_ops` twins Django adds to the unique card and phone numbers serve only
  case-sensitive `LIKE 'x%'`/`startswith`, which nothing runs on either (cards and phones are
  found by equal number or, for a fragment of a phone, through the trigram index); the plain
  btree ones stay. The audit action's twin goes in crm 0011.
"""

import django.contrib.postgres.indexes
from django.conf import settings
from django.db import migrations, models

PENDING = """
ALTER INDEX name_token_trgm SET (fastupdate = on, gin_pending_list_limit = 256);
"""
DIRECT = """
ALTER INDEX name_token_trgm SET (fastupdate = off);
ALTER INDEX name_token_trgm RESET (gin_pending_list_limit);
SELECT gin_clean_pending_list('name_token_trgm');
"""
DROP_LIKE = """
DROP INDEX IF EXISTS customers_customer_card_number_4e631152_like;
DROP INDEX IF EXISTS customers_customerphone_number_45810936_like;
"""
CREATE_LIKE = """
CREATE INDEX IF NOT EXISTS customers_customer_card_number_4e631152_like
    ON customers_customer (card_number varchar_pattern_ops);
CREATE INDEX IF NOT EXISTS customers_customerphone_number_45810936_like
    ON customers_customerphone (number varchar_pattern_ops);
"""


def _trgm_index(**options):
    return django.contrib.postgres.indexes.GinIndex(
        django.contrib.postgres.indexes.OpClass("token", name="gin_trgm_ops"),
        name="name_token_trgm",
        **options,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0010_user_api_tokens"),
        ("customers", "0013_lead_name_tokens_prune_schedule"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(
            PENDING,
            DIRECT,
            state_operations=[
                migrations.RemoveIndex(model_name="nametoken", name="name_token_trgm"),
                migrations.AddIndex(
                    model_name="nametoken",
                    index=_trgm_index(fastupdate=True, gin_pending_list_limit=256),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="customer",
            name="assigned_manager",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="assigned_customers",
                to=settings.AUTH_USER_MODEL,
                verbose_name="assigned manager",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="customer",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="consents",
                to="customers.customer",
            ),
        ),
        migrations.RunSQL(DROP_LIKE, CREATE_LIKE),
    ]
