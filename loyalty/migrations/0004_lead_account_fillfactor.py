"""Room on each page of `loyalty_account` for the new versions of its rows.

Every booking rewrites a card holder's account row twice (the ledger's sums, then the tier and
12-month spend). With full pages each new version went to another page and into every index;
with a fifth of each page kept free PostgreSQL writes it beside the old one (a HOT update, no
index entries), which took the first booking of each account down to the cost of later ones
(bench/loyalty.py, bench/README.md "Loyalty booking as plain rows"). Applies to pages written
from now on; an existing install's table takes it on its next rewrite.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0003_h18l_rules_version")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE loyalty_account SET (fillfactor = 80)",
            "ALTER TABLE loyalty_account RESET (fillfactor)",
        )
    ]
