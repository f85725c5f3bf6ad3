"""A version number for the programme's rules, so each process may keep one copy of them.

Any statement writing the programme, tiers, product rules or promotions bumps the sequence
`loyalty_rules_version` (and a deferred row trigger bumps it again at commit, so a reader that
reloaded in between sees a newer number once the change is visible); the till's calculation
reads the number in a query it makes anyway and reloads the rules when it moved
(`loyalty.rules.rulebook_for`).
"""

from django.db import migrations

TABLES = ["loyalty_programme", "loyalty_tier", "loyalty_productrule", "loyalty_promotion"]

FORWARD = """
CREATE SEQUENCE loyalty_rules_version;
SELECT nextval('loyalty_rules_version');
CREATE FUNCTION loyalty_rules_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('loyalty_rules_version');
  RETURN NULL;
END $$;
""" + "".join(
    f"""
CREATE TRIGGER {table}_rules_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION loyalty_rules_bump();
CREATE CONSTRAINT TRIGGER {table}_rules_bump_commit AFTER INSERT OR UPDATE OR DELETE ON {table}
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION loyalty_rules_bump();
"""
    for table in TABLES
)

BACKWARD = (
    "".join(
        f"""
DROP TRIGGER {table}_rules_bump ON {table};
DROP TRIGGER {table}_rules_bump_commit ON {table};
"""
        for table in TABLES
    )
    + """
DROP FUNCTION loyalty_rules_bump();
DROP SEQUENCE loyalty_rules_version;
"""
)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0002_i18_ledger_guard")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
