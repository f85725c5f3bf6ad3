"""crm.pg.rebuild.rebuild_table: a table rebuilt from a SELECT and swapped in keeps its schema,
names included, takes the new rows, keeps the rows it is told to keep, and refuses what the
swap would lose. (Other connections during the swap: test_pg_rebuild_concurrency.py.)"""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from analytics.models import CustomerMetrics
from crm.pg.rebuild import UnsupportedTable, rebuild_table
from tests.crm.pg_scratch import (
    NEW_COLUMNS,
    TABLE,
    catalog,
    create_scratch_table,
    rebuild_new,
    rows,
    table_oid,
)
from tests.factories import CustomerFactory


@pytest.fixture
def customers(db):
    return [CustomerFactory().pk for _ in range(3)]


@pytest.fixture
def scratch(customers):
    create_scratch_table(customers)
    return customers


@pytest.mark.django_db
def test_rebuilt_table_has_the_same_catalog_definitions_and_the_new_rows(scratch):
    first, second, _third = scratch
    before = catalog(TABLE)
    old_oid = table_oid()

    count = rebuild_new(first, second)

    assert count == 3
    assert table_oid() != old_oid  # a new table, not the old one rewritten
    assert table_oid(f"{TABLE}__next") is None
    assert catalog(TABLE) == before
    assert set(before["indexes"]) == {
        f"{TABLE}_pkey",
        f"{TABLE}_code_uniq",
        f"{TABLE}_customer",
        f"{TABLE}_noted",
    }
    assert before["constraints"][f"{TABLE}_customer_fk"][0].endswith(
        "DEFERRABLE INITIALLY DEFERRED"
    )
    assert rows() == [
        (2, "b", 5, 50, second, "new b"),
        (10, "x", 1, 10, first, None),
        (11, "y", 3, 30, first, "new y"),
    ]


@pytest.mark.django_db
def test_rebuilt_table_enforces_its_constraints_and_defaults(scratch):
    first, second, _third = scratch
    rebuild_new(first, second)

    with connection.cursor() as cursor:
        # Column defaults and the identity sequence, continued from the original's.
        cursor.execute(
            f"INSERT INTO {TABLE} (code, customer_id) VALUES ('d', %s) RETURNING id, qty, total",
            [first],
        )
        new_id, qty, total = cursor.fetchone()
        assert new_id > 3 and (qty, total) == (1, 10)
        for statement, params in [
            (f"INSERT INTO {TABLE} (code, qty, customer_id) VALUES ('e', 0, %s)", [first]),
            (f"INSERT INTO {TABLE} (code, customer_id) VALUES ('x', %s)", [first]),
            (f"INSERT INTO {TABLE} (id, code, customer_id) VALUES (10, 'f', %s)", [first]),
            (f"INSERT INTO {TABLE} (code, customer_id) VALUES (NULL, %s)", [first]),
        ]:
            with pytest.raises(IntegrityError), transaction.atomic():
                cursor.execute(statement, params)
        # The foreign key is still deferred: a bad row is refused at the end of the block.
        with pytest.raises(IntegrityError, match=f"{TABLE}_customer_fk"):
            with transaction.atomic():
                cursor.execute(f"INSERT INTO {TABLE} (code, customer_id) VALUES ('g', -1)")
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.django_db
def test_keep_sql_rows_replace_new_rows_with_the_same_key_or_are_added(scratch):
    first, second, third = scratch
    with connection.cursor() as cursor:
        # Refreshed after the snapshot: row 2 (also in the new data) and row 3 (not in it).
        cursor.execute(
            f"UPDATE {TABLE} SET note = 'refreshed', updated_at = now() + interval '1 hour' "
            "WHERE id IN (2, 3)"
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SELECT now()")
        snapshot = cursor.fetchone()[0]

    count = rebuild_new(
        first,
        second,
        keep_sql=f"SELECT * FROM {TABLE} AS old WHERE old.updated_at > %s",
        keep_params=[snapshot],
    )

    assert count == 4
    assert rows() == [
        (2, "b", 2, 20, second, "refreshed"),
        (3, "c", 2, 20, third, "refreshed"),
        (10, "x", 1, 10, first, None),
        (11, "y", 3, 30, first, "new y"),
    ]


@pytest.mark.django_db
def test_select_may_read_the_table_it_replaces_and_default_to_every_column(scratch):
    before = rows()

    count = rebuild_table(
        TABLE,
        f"SELECT id, code, qty + 1, customer_id, note, updated_at FROM {TABLE} "
        "WHERE code <> 'c' AND code NOT LIKE '%%z'",
        [],
    )

    assert count == 2
    assert rows() == [
        (i, code, qty + 1, (qty + 1) * 10, c, n) for i, code, qty, _t, c, n in before[:2]
    ]


@pytest.mark.django_db
def test_foreign_key_violation_in_the_new_rows_raises_at_once_and_rolls_back(scratch):
    before_catalog, before_rows, old_oid = catalog(TABLE), rows(), table_oid()
    reached_commit = False

    with pytest.raises(IntegrityError, match=f"{TABLE}_customer_fk"):
        with transaction.atomic():
            rebuild_table(
                TABLE,
                "SELECT 20, 'z', 1, -1::bigint, NULL, now()",
                None,
                columns=NEW_COLUMNS,
            )
            reached_commit = True

    # Adding the foreign key checked every row: the error came from rebuild_table itself.
    assert not reached_commit
    assert table_oid() == old_oid and table_oid(f"{TABLE}__next") is None
    assert catalog(TABLE) == before_catalog and rows() == before_rows


@pytest.mark.django_db
def test_foreign_key_into_the_table_is_refused_before_anything_changes(scratch):
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE pgswap_child (id bigint PRIMARY KEY, "
            f"scratch_id bigint CONSTRAINT pgswap_child_scratch_fk REFERENCES {TABLE} (id))"
        )
    before_catalog, before_rows, old_oid = catalog(TABLE), rows(), table_oid()

    with pytest.raises(UnsupportedTable, match="pgswap_child_scratch_fk on pgswap_child"):
        rebuild_table(TABLE, "SELECT 1", None)

    assert table_oid() == old_oid and table_oid(f"{TABLE}__next") is None
    assert catalog(TABLE) == before_catalog and rows() == before_rows
    assert catalog("pgswap_child")["constraints"]["pgswap_child_scratch_fk"][0] == (
        f"FOREIGN KEY (scratch_id) REFERENCES {TABLE}(id)"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("dependent", "message"),
    [
        (f"CREATE VIEW pgswap_view AS SELECT code FROM {TABLE}", "view pgswap_view"),
        (
            "CREATE FUNCTION pgswap_noop() RETURNS trigger LANGUAGE plpgsql "
            "AS 'BEGIN RETURN NEW; END';"
            f"CREATE TRIGGER pgswap_touch BEFORE UPDATE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION pgswap_noop()",
            "triggers: pgswap_touch",
        ),
        (f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY", "row-level security"),
    ],
)
def test_what_the_swap_would_lose_is_refused(scratch, dependent, message):
    with connection.cursor() as cursor:
        cursor.execute(dependent)
    old_oid = table_oid()

    with pytest.raises(UnsupportedTable, match=message):
        rebuild_table(TABLE, "SELECT 1", None)

    assert table_oid() == old_oid and table_oid(f"{TABLE}__next") is None


@pytest.mark.django_db
def test_owner_privileges_and_a_serial_sequence_are_carried_over(scratch):
    first, _second, _third = scratch
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE ROLE pgswap_test_owner; CREATE ROLE pgswap_test_reader;"
            f"ALTER TABLE {TABLE} ADD COLUMN ticket serial;"
            f"ALTER TABLE {TABLE} OWNER TO pgswap_test_owner;"
            f"GRANT SELECT ON {TABLE} TO pgswap_test_reader WITH GRANT OPTION;"
            f"REVOKE TRUNCATE ON {TABLE} FROM pgswap_test_owner"
        )
        cursor.execute(f"SELECT max(ticket) FROM {TABLE}")
        last_ticket = cursor.fetchone()[0]
    before = catalog(TABLE)
    assert before["owner"] == "pgswap_test_owner" and "pgswap_test_reader=r*/" in before["acl"]

    rebuild_table(
        TABLE,
        f"SELECT id + 100, code, qty, customer_id FROM {TABLE}",
        None,
        columns=["id", "code", "qty", "customer_id"],
    )

    assert catalog(TABLE) == before
    with connection.cursor() as cursor:
        # The serial column's sequence went on with the new table and counts on.
        cursor.execute(f"SELECT min(ticket) FROM {TABLE}")
        assert cursor.fetchone()[0] > last_ticket
        cursor.execute(
            f"INSERT INTO {TABLE} (code, customer_id) VALUES ('s', %s) RETURNING ticket", [first]
        )
        assert cursor.fetchone()[0] > last_ticket + 3


ODD = "PgSwap Odd%"
LONG_INDEX = "pgswap_" + "x" * 56  # 63 characters: no room for a suffix


@pytest.mark.django_db
def test_odd_names_not_valid_constraints_and_table_options_round_trip(customers):
    first = customers[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE UNLOGGED TABLE "{ODD}" (
                "Id" integer GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 5),
                code text COLLATE "C" NOT NULL,
                slot integer NOT NULL,
                parent_id bigint,
                payload text,
                CONSTRAINT "{ODD} pkey" PRIMARY KEY ("Id"),
                CONSTRAINT odd_code UNIQUE (code) DEFERRABLE INITIALLY IMMEDIATE,
                CONSTRAINT odd_slot EXCLUDE USING btree (slot WITH =)
            ) WITH (fillfactor = 70, toast.autovacuum_enabled = false);
            ALTER TABLE "{ODD}" ALTER COLUMN payload SET STORAGE EXTERNAL,
                                ALTER COLUMN slot SET (n_distinct = -0.5);
            CREATE INDEX {LONG_INDEX} ON "{ODD}" (lower(code)) INCLUDE (slot);
            ALTER TABLE "{ODD}" CLUSTER ON {LONG_INDEX};
            ALTER TABLE "{ODD}" REPLICA IDENTITY USING INDEX "{ODD} pkey";
            INSERT INTO "{ODD}" (code, slot, parent_id) VALUES ('old', 150, -1), ('a', 1, NULL);
            ALTER TABLE "{ODD}" ADD CONSTRAINT odd_slot_small CHECK (slot < 100) NOT VALID,
                ADD CONSTRAINT odd_parent FOREIGN KEY (parent_id)
                    REFERENCES customers_customer (id) NOT VALID;
            SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED;
            """
        )
    before = catalog(f'"{ODD}"')
    assert before["constraints"]["odd_parent"][0].endswith("NOT VALID")

    count = rebuild_table(
        ODD,
        "SELECT v.code, v.slot, v.parent_id FROM (VALUES ('b', 2, %s::bigint), ('c', 3, NULL)) "
        "AS v(code, slot, parent_id) WHERE v.code LIKE '%%'",
        [first],
        columns=["code", "slot", "parent_id"],
        # The row that predates both NOT VALID constraints survives.
        keep_sql=f'SELECT * FROM "{ODD.replace("%", "%%")}" WHERE slot > %s',
        keep_params=[99],
    )

    assert count == 3
    assert catalog(f'"{ODD}"') == before
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "Id", code, slot, parent_id FROM "{ODD}" ORDER BY "Id"')
        # New rows took ids after the original's last one.
        assert cursor.fetchall() == [
            (100, "old", 150, -1),
            (110, "b", 2, first),
            (115, "c", 3, None),
        ]
        # Both are still enforced on new rows.
        for values in ["('d', 101, NULL)", "('e', 4, -2)"]:
            with pytest.raises(IntegrityError), transaction.atomic():
                cursor.execute(f'INSERT INTO "{ODD}" (code, slot, parent_id) VALUES {values}')


@pytest.mark.django_db
def test_customer_metrics_table_introspects_the_same_after_a_rebuild():
    table = CustomerMetrics._meta.db_table
    now = timezone.now()
    for customer in CustomerFactory.create_batch(3):
        CustomerMetrics.objects.create(
            customer=customer, receipts=2, value_class="C", rfm_segment="loyal", computed_at=now
        )

    def introspection() -> dict:
        with connection.cursor() as cursor:
            return {
                "constraints": connection.introspection.get_constraints(cursor, table),
                "columns": connection.introspection.get_table_description(cursor, table),
                "relations": connection.introspection.get_relations(cursor, table),
                "sequences": connection.introspection.get_sequences(cursor, table),
                "primary_key": connection.introspection.get_primary_key_column(cursor, table),
            }

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED")
    before = introspection()
    values = list(CustomerMetrics.objects.order_by("pk").values())

    assert rebuild_table(table, f"SELECT * FROM {table}", None) == 3

    assert introspection() == before
    assert list(CustomerMetrics.objects.order_by("pk").values()) == values
    assert {"metrics_value_class", "metrics_rfm_segment"} <= set(before["constraints"])
