from django.db import migrations

# Migration 0009's update trigger added the folded names of every updated card, so a statement
# that changes something else (the history import marking 100,000 buyers, a bulk tag, a consent)
# re-inserted every name it touched, each a conflict on the dictionary's unique index. PostgreSQL
# refuses a column list (UPDATE OF) on a trigger with transition tables, so this one reads both
# tables and adds only the names of the cards whose surname or first name changed: the same
# dictionary, since an unchanged name was added when it was written.
RENAMED = """
CREATE FUNCTION customers_name_tokens_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customers_nametoken (kind, token)
    SELECT DISTINCT kind, token FROM (
        SELECT 's' AS kind, TRANSLATE(UPPER(n.surname), 'Ё', 'Е') AS token
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.surname IS DISTINCT FROM o.surname
        UNION ALL
        SELECT 'f', TRANSLATE(UPPER(n.first_name), 'Ё', 'Е')
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.first_name IS DISTINCT FROM o.first_name
    ) names
    WHERE token <> ''
    ORDER BY kind, token
    ON CONFLICT (kind, token) DO NOTHING;
    RETURN NULL;
END
$$;
DROP TRIGGER customers_name_tokens_update ON customers_customer;
CREATE TRIGGER customers_name_tokens_update AFTER UPDATE ON customers_customer
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customers_name_tokens_renamed();
"""
EVERY_UPDATE = """
DROP TRIGGER customers_name_tokens_update ON customers_customer;
DROP FUNCTION customers_name_tokens_renamed();
CREATE TRIGGER customers_name_tokens_update AFTER UPDATE ON customers_customer
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customers_name_tokens_sync();
"""


class Migration(migrations.Migration):
    dependencies = [("customers", "0011_h15_name_token_probe")]

    operations = [migrations.RunSQL(RENAMED, EVERY_UPDATE)]
