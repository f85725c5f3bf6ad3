"""Bulk loading through PostgreSQL: id ranges, COPY in, index and foreign-key upkeep deferred.

Ids are reserved from each table's own sequence (so later inserts by the app never collide) and
written explicitly, which lets children reference parents without reading anything back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.db import connection
from django.db.models import Model


def reserve_ids(model: type[Model], count: int) -> int:
    """Take `count` consecutive ids from the table's sequence; returns the first."""
    if count <= 0:
        return 1
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'),"
            " nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
            [table, table, count],
        )
        last = cursor.fetchone()[0]
    return last - count + 1


def copy_text(model: type[Model], columns: Sequence[str], chunks: Iterable[str]) -> None:
    """COPY pre-formatted text (tab-separated, one row a line, no trailing newline per chunk)."""
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for chunk in chunks:
            if chunk:
                copy.write(chunk)
                copy.write("\n")


def copy_rows(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY Python values (None, bool, int, str, date, aware datetime, Decimal) row by row."""
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


@contextmanager
def bulk_load(models: Iterable[type[Model]]) -> Iterator[None]:
    """Load the tables of `models` without per-row index and foreign-key upkeep.

    Secondary indexes and foreign keys are dropped and, on the way out, recreated from their
    own definitions: PostgreSQL then builds each index by one sort and checks each foreign key
    with one join, instead of millions of single-row steps. All of it runs inside the caller's
    transaction, so an error (including a broken reference) restores everything as it was.
    """
    tables = [m._meta.db_table for m in models]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Run the checks queued by earlier inserts now: a table with pending ones cannot change.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
            FROM pg_constraint c
            WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[])
            ORDER BY 1, 2
            """,
            [tables],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            WHERE i.indrelid = ANY(%s::regclass[])
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            ORDER BY 1
            """,
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _ in foreign_keys:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {_quote(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    with connection.cursor() as cursor:
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} {definition}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def analyze(models: Iterable[type[Model]]) -> None:
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def money(kopecks: int) -> str:
    sign = "-" if kopecks < 0 else ""
    value = abs(kopecks)
    return f"{sign}{value // 100}.{value % 100:02d}"


def text(value: str) -> str:
    """Escape a string for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )
