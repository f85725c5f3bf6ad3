"""The guard of the accounts' sums is asked only about a write it would refuse.

`loyalty_account_sums_guard` (migration 0002) ran its PL/pgSQL function for every update of an
account, and a bulk booking updates each of its accounts twice (the ledger's sums trigger and
the tier placement), only to find the sums trigger writing or the sums unchanged. The same test
as the trigger's WHEN condition is evaluated without a function call: `pg_trigger_depth()` is
read in the updating statement's own context there (0 for a direct write, 1 inside the sums
trigger), one less than inside the function, which keeps its own check.
"""

from django.db import migrations

GUARD = """
DROP TRIGGER loyalty_account_sums_guard ON loyalty_account;
CREATE TRIGGER loyalty_account_sums_guard BEFORE UPDATE ON loyalty_account
  FOR EACH ROW
  WHEN (pg_trigger_depth() < 1
        AND (NEW.available, NEW.pending, NEW.debt) IS DISTINCT FROM
            (OLD.available, OLD.pending, OLD.debt))
  EXECUTE FUNCTION loyalty_account_sums_guard();
"""

UNGUARD = """
DROP TRIGGER loyalty_account_sums_guard ON loyalty_account;
CREATE TRIGGER loyalty_account_sums_guard BEFORE UPDATE ON loyalty_account
  FOR EACH ROW EXECUTE FUNCTION loyalty_account_sums_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0006_h18_account_tier_unindexed")]

    operations = [migrations.RunSQL(GUARD, UNGUARD)]
