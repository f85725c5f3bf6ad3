"""bigint_sum(bigint): an integer sum whose running state is a plain bigint.

PostgreSQL's own sum(bigint) returns numeric and keeps a 128-bit state in memory allocated
per group, a cache miss per row and aggregate when 200,000 customers' groups are updated in
turn. The metrics run sums kopecks, far below 2**63 for any chain; should a sum ever exceed
it, int8pl raises "bigint out of range" rather than wrap. Parallel-safe, with int8pl
combining the workers' partial sums.
"""

from django.db import migrations

CREATE = """
CREATE AGGREGATE bigint_sum(bigint) (
    SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl, PARALLEL = SAFE
)
"""
DROP = "DROP AGGREGATE bigint_sum(bigint)"


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0007_clv_fit_notes"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
