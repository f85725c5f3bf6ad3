"""crm.pg.rebuild.rebuild_table with real commits and other connections: they see the old
table or the new one, never a broken one, and lock waits give up cleanly."""

import threading
import time

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from crm.pg.rebuild import rebuild_table
from tests.crm.pg_scratch import (
    GATE,
    NEW_COLUMNS,
    NEW_ROWS,
    TABLE,
    catalog,
    create_scratch_table,
    rebuild_new,
    rows,
    table_oid,
)
from tests.factories import CustomerFactory

# -- with real commits and other connections ---------------------------------------------------


def open_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    )


def wait_until(condition, what: str, timeout: float = 60) -> None:
    """Poll until `condition()` holds; the deadline only turns a hang into a failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting until {what}")
        time.sleep(0.02)


def awaited_lock(observer: psycopg.Connection, pid: int) -> tuple | None:
    """The lock backend `pid` waits for, as (lock type, relation oid, mode), if any."""
    return observer.execute(
        "SELECT locktype, relation::bigint, mode FROM pg_locks WHERE pid = %s AND NOT granted",
        [pid],
    ).fetchone()


class Background(threading.Thread):
    """Runs `work` in a thread and keeps its result or its exception for the test."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work = work
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # handed to the test by outcome()
            self.error = exc
        finally:
            connection.close()

    def outcome(self):
        self.join(timeout=60)
        assert not self.is_alive(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def swap_until_blocked(
    observer: psycopg.Connection, oid: int, what: str, params: dict, **options
) -> Background:
    """Start `rebuild_table` of the new rows in a thread, in its own transaction, and return
    once it waits for the ACCESS EXCLUSIVE lock on relation `oid`."""
    pid = []

    def swap():
        with transaction.atomic():
            pid.append(connection.connection.info.backend_pid)
            return rebuild_table(TABLE, NEW_ROWS, params, columns=NEW_COLUMNS, **options)

    swapping = Background(swap)
    swapping.start()
    wait_until(
        lambda: pid and awaited_lock(observer, pid[0]) == ("relation", oid, "AccessExclusiveLock"),
        what,
    )
    return swapping


@pytest.fixture
def committed_scratch(transactional_db):
    customers = [CustomerFactory().pk for _ in range(3)]
    create_scratch_table(customers)
    yield customers
    with connection.cursor() as cursor:
        # Before the test's flush, which cannot truncate a table referenced from here.
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


@pytest.mark.django_db(transaction=True)
def test_readers_finish_on_the_old_table_and_queued_ones_see_the_new_one(committed_scratch):
    first, second, third = committed_scratch
    with connection.cursor() as cursor:
        # A one-row refresh committed after the rebuild's snapshot: keep_sql keeps it.
        cursor.execute("SELECT now()")
        snapshot = cursor.fetchone()[0]
        cursor.execute(
            f"UPDATE {TABLE} SET note = 'refreshed', updated_at = now() + interval '1 hour' "
            "WHERE id = 3"
        )
    old_rows, old_oid = rows(), table_oid()
    with open_connection() as gate, open_connection() as observer:
        gate.execute("SELECT pg_advisory_lock(%s)", [GATE])
        early, late, writer = open_connection(), open_connection(), open_connection()
        try:
            # A reader mid-query on the old table: it holds its lock while it waits at the gate.
            reading = Background(
                lambda: early.execute(
                    f"SELECT id, code FROM {TABLE}, (SELECT pg_advisory_xact_lock_shared(%s)) g "
                    "ORDER BY id",
                    [GATE],
                ).fetchall()
            )
            early_pid = early.info.backend_pid
            reading.start()
            wait_until(
                lambda: awaited_lock(observer, early_pid) == ("advisory", None, "ShareLock"),
                "the early reader waits at the gate",
            )

            swapping = swap_until_blocked(
                observer,
                old_oid,
                "the swap waits for the early reader",
                {"first": first, "second": second},
                keep_sql=f"SELECT * FROM {TABLE} WHERE updated_at > %s",
                keep_params=[snapshot],
            )

            # Issued during the swap: they queue behind its lock.
            late_reading = Background(
                lambda: late.execute(
                    f"SELECT id, code FROM {TABLE} WHERE qty >= %s ORDER BY id", [0]
                ).fetchall()
            )
            late_reading.start()
            writing = Background(
                lambda: (
                    writer.execute(
                        f"UPDATE {TABLE} SET note = 'late' WHERE code = %s", ["x"]
                    ).rowcount
                )
            )
            writing.start()
            late_pid, writer_pid = late.info.backend_pid, writer.info.backend_pid
            wait_until(
                lambda: (
                    awaited_lock(observer, late_pid) == ("relation", old_oid, "AccessShareLock")
                ),
                "the late reader queues behind the swap",
            )
            wait_until(
                lambda: (
                    awaited_lock(observer, writer_pid) == ("relation", old_oid, "RowExclusiveLock")
                ),
                "the writer queues behind the swap",
            )
            assert swapping.is_alive()

            gate.execute("SELECT pg_advisory_unlock(%s)", [GATE])

            assert reading.outcome() == [(i, code) for i, code, *_rest in old_rows]
            assert swapping.outcome() == 4
            assert late_reading.outcome() == [(2, "b"), (3, "c"), (10, "x"), (11, "y")]
            assert writing.outcome() == 1
        finally:
            for each in (early, late, writer):
                each.close()
    assert [(i, customer, note) for i, _c, _q, _t, customer, note in rows()] == [
        (2, second, "new b"),
        (3, third, "refreshed"),
        (10, first, "late"),
        (11, first, "new y"),
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("held", [TABLE, "customers_customer"])
def test_lock_timeout_gives_up_and_leaves_the_original(committed_scratch, held):
    first, second, _third = committed_scratch
    before_catalog, before_rows, old_oid = catalog(TABLE), rows(), table_oid()
    with open_connection() as holder:
        with holder.transaction():
            holder.execute(f"SELECT count(*) FROM {held}")  # holds ACCESS SHARE until commit
            with pytest.raises(OperationalError) as raised, transaction.atomic():
                rebuild_new(
                    first,
                    second,
                    lock_timeout=0.05,
                    lock_attempts=2,
                )
    assert isinstance(raised.value.__cause__, psycopg.errors.LockNotAvailable)
    assert table_oid() == old_oid and table_oid(f"{TABLE}__next") is None
    assert catalog(TABLE) == before_catalog and rows() == before_rows

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '7s'")
            rebuild_new(
                first,
                second,
                lock_timeout=5,
            )
            cursor.execute("SELECT current_setting('lock_timeout')")
            assert cursor.fetchone()[0] == "7s"  # the caller's setting is back
    assert [row[0] for row in rows()] == [2, 10, 11]


@pytest.mark.django_db(transaction=True)
def test_a_session_holding_a_referenced_table_is_let_through_between_lock_attempts(
    committed_scratch,
):
    # The other session holds customers_customer and then wants the table: with both swap
    # locks in one attempt, a timed-out attempt lets go of the table too, the session
    # finishes, and the next attempt gets both (instead of a deadlock).
    first, second, _third = committed_scratch
    with open_connection() as other, open_connection() as observer:
        other_pid = other.info.backend_pid
        other.execute("BEGIN")
        other.execute("SELECT count(*) FROM customers_customer")
        customers_oid = observer.execute(
            "SELECT 'customers_customer'::regclass::oid::bigint"
        ).fetchone()[0]
        swapping = swap_until_blocked(
            observer,
            customers_oid,
            "the swap holds the table and waits for customers_customer",
            {"first": first, "second": second},
            lock_timeout=0.1,
            lock_attempts=50,
        )

        def read_then_commit():
            count = other.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
            other.execute("COMMIT")
            return count

        reading = Background(read_then_commit)
        reading.start()
        assert reading.outcome() == 3  # the old table, between two attempts of the swap
        assert swapping.outcome() == 3
        assert awaited_lock(observer, other_pid) is None
    assert [row[0] for row in rows()] == [2, 10, 11]


@pytest.mark.django_db(transaction=True)
def test_repeatable_read_snapshot_from_before_the_swap_sees_the_new_table_empty(
    committed_scratch,
):
    # The documented caveat, as with TRUNCATE: the new rows belong to a transaction that was
    # still running when this snapshot was taken.
    first, second, _third = committed_scratch
    with open_connection() as reader:
        with reader.transaction():
            reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            reader.execute("SELECT 1")  # takes the snapshot without touching the table
            with transaction.atomic():
                rebuild_new(first, second)
            assert reader.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == 0
        assert reader.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == 3


@pytest.mark.django_db(transaction=True)
def test_rebuild_outside_a_transaction_is_refused(committed_scratch):
    with pytest.raises(RuntimeError, match=r"transaction\.atomic"):
        rebuild_table(TABLE, "SELECT 1", None)
    assert len(rows()) == 3
