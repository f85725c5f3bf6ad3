"""The name dictionary's trigram probe as a database function that runs with the sequential
scan off, so name search no longer sets and restores the planner setting around it (four
statements fewer per search). See customers.selectors.search._dictionary_matches.
"""

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


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0010_h15_name_walk_indexes"),
    ]

    operations = [migrations.RunSQL(PROBE, DROP)]
