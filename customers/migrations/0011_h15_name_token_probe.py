"""The name dictionary's trigram probe as a database function that runs with the sequential
scan off, so name search no longer sets and restores the planner setting around it (four
statements fewer per search). See customers.selectors.search._dictionary_matches.

The dictionary's trigram index is written to directly from now on (fastupdate off) and its
pending list merged: at a million cards a bulk load left one that tripled every probe's cost.
"""

import django.contrib.postgres.indexes
from django.db import migrations

PROBE = """
CREATE FUNCTION customers_name_token_ids(words text[], patterns text[]) RETURNS SETOF bigint
LANGUAGE sql STABLE ROWS 100
SET enable_seqscan = off
AS $$
    SELECT DISTINCT t.id
    FROM unnest(words, patterns) AS w(word, pattern)
    JOIN customers_nametoken t ON t.token % w.word OR t.token LIKE w.pattern
$$;
"""
DROP = "DROP FUNCTION IF EXISTS customers_name_token_ids(text[], text[]);"
DIRECT = """
ALTER INDEX name_token_trgm SET (fastupdate = off);
SELECT gin_clean_pending_list('name_token_trgm');
"""
PENDING = "ALTER INDEX name_token_trgm RESET (fastupdate);"


def _trgm_index(**options):
    return django.contrib.postgres.indexes.GinIndex(
        django.contrib.postgres.indexes.OpClass("token", name="gin_trgm_ops"),
        name="name_token_trgm",
        **options,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0010_h15_name_walk_indexes"),
    ]

    operations = [
        migrations.RunSQL(PROBE, DROP),
        migrations.RunSQL(
            DIRECT,
            PENDING,
            state_operations=[
                migrations.RemoveIndex(model_name="nametoken", name="name_token_trgm"),
                migrations.AddIndex(model_name="nametoken", index=_trgm_index(fastupdate=False)),
            ],
        ),
    ]
