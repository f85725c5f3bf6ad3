"""Rebuild a whole table from a SELECT and swap it in under the original's name.

The catalog reads it relies on live in `crm.pg.catalog`.

Rewriting every row in place (`INSERT ... ON CONFLICT DO UPDATE`, or `TRUNCATE` + `INSERT`)
pays per row: a dead tuple, an entry in every index, a deferred foreign-key check at commit.
Filling a fresh table that has no indexes yet, then building each index once and checking each
foreign key with one join, costs a fraction of that. `rebuild_table` does it inside the
caller's transaction, so an error anywhere (a bad row, a lock timeout) leaves the original as
it was, and other sessions see either the old table or the new one, never a half-written one.

Steps, in the caller's transaction:

1. `LOCK ... SHARE UPDATE EXCLUSIVE` on the original: readers and writers go on, but a schema
   change (or a second rebuild) cannot slip in between reading the catalog and the swap and be
   lost with the old table.
2. Read the original's shape from the catalog and refuse (`UnsupportedTable`, nothing changed)
   what the swap would lose or break: foreign keys pointing into the table, views and other
   objects depending on it, user triggers, rules, row-level security, inheritance and
   partitions, publications, extended statistics, column privileges, tablespaces.
3. `CREATE TABLE <table>__next (LIKE <table> INCLUDING ...)` — everything but indexes — with
   the original's access method, storage parameters, owner, privileges and comment, column
   statistics targets and n_distinct; identity sequences get the original's type and options
   and continue from its value.
4. `INSERT INTO <table>__next (columns) <select>`. NOT NULL and CHECK came over with LIKE, so
   each row is checked as it goes in.
5. Every index and every primary key / unique / exclusion constraint, from `pg_get_indexdef`
   and `pg_get_constraintdef`, under temporary names (index names are unique per schema and
   the original still holds them); then ANALYZE (nobody waits for it yet).
6. Foreign keys from the table, under their own names (constraint names are per table), with
   `DEFERRABLE INITIALLY DEFERRED` as defined. Adding one checks all rows with one anti-join,
   so a violating row raises here, not at commit. `NOT VALID` + `VALIDATE CONSTRAINT` costs the
   same (bench/README.md, "PostgreSQL tooling") and, inside one transaction, holds the same
   locks to the commit, so the plain add is used. Constraints that are NOT VALID on the
   original go on validated (CHECKs at step 3, foreign keys here), so the new rows are checked
   as the original checks new rows, and are made NOT VALID again at step 7 around the kept
   rows, which may predate them.
7. The swap: `LOCK ... ACCESS EXCLUSIVE` on the original; the `keep_sql` rows; the same lock on
   every table the foreign keys reference (DROP removes the foreign keys' triggers from them);
   DROP of the original; renames of the table, its index-backed constraints, indexes and
   identity sequences to the original names.
8. Compare the new table's catalog shape with the original's (columns, constraint and index
   definitions with their names, owner, privileges, options, comments, sequences); a
   difference raises `SchemaMismatch` and the caller's transaction rolls back.

Concurrency: no reader or writer waits for the rebuild before step 6. From step 6 to the
commit, writes to the referenced tables wait (SHARE ROW EXCLUSIVE). At step 7 the swap waits
for the queries already running on the table (then on the referenced tables), and every later
query on them queues behind it until the caller commits; then those queries look the name up
again and read or write the new table (PostgreSQL resolves a relation name again after waiting
for its lock). `lock_timeout` bounds each wait: the lock steps run in a savepoint per attempt,
`lock_attempts` times in all, then the lock error is raised. Step 7's two locks are one
attempt, so a session that holds a referenced table while it waits for this one gets through
when an attempt gives up, instead of deadlocking with the swap. A REPEATABLE READ or
SERIALIZABLE transaction whose snapshot predates the commit sees the new table empty, as after
TRUNCATE.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg.errors
from django.db import OperationalError, connection, transaction
from psycopg import sql

from .catalog import (
    LIKE_OPTIONS,
    PRIVILEGES,
    Table,
    UnsupportedTable,
    grantee_sql,
    option_sql,
    read_table,
    refuse_unsupported,
    relation_privileges,
    shape_diff,
    table_shape,
    temp_name,
    validated_definition,
)

__all__ = ["SchemaMismatch", "UnsupportedTable", "rebuild_table"]

Params = Sequence[Any] | Mapping[str, Any] | None


class SchemaMismatch(RuntimeError):
    """The rebuilt table does not look like the original. Raised inside the caller's
    `transaction.atomic()`, it rolls the whole rebuild back."""


def rebuild_table(
    table: str,
    select_sql: str,
    params: Params = None,
    *,
    columns: Sequence[str] | None = None,
    keep_sql: str | None = None,
    keep_params: Params = (),
    analyze: bool = True,
    lock_timeout: float | None = None,
    lock_attempts: int = 5,
) -> int:
    """Replace every row of `table` with the rows of `select_sql`; returns the new row count.

    `select_sql` (with `params`, in Django's `%s` / `%(name)s` style) yields the values of
    `columns`, or, when `columns` is not given, of every non-generated column in table order;
    columns left out take their defaults. It may read the table itself: the original keeps its
    name and rows until the swap.

    `keep_sql` (with `keep_params`) selects rows of the ORIGINAL table, by its own name, that
    must survive, e.g. `SELECT * FROM analytics_customermetrics AS old WHERE old.computed_at >
    %s` for rows refreshed after the full run's snapshot. Any alias works: its result is read
    by column name, so `SELECT *` is fine (generated columns are left out and recomputed). Each
    kept row replaces the new row with the same primary key, or is added (a clash on another
    unique key fails the rebuild). It runs under the swap's ACCESS EXCLUSIVE lock, so no write
    to the original can commit after it; it needs a primary key, and a READ COMMITTED
    transaction (an older snapshot would miss rows committed during the rebuild).

    `analyze`: ANALYZE the new table before the swap (its planner statistics start empty).
    `lock_timeout` (seconds): the longest each lock step waits before it is retried, up to
    `lock_attempts` times in all; `None` waits as long as the session's own setting allows.

    Must run inside `transaction.atomic()`. PostgreSQL refuses to drop or alter a table that
    has deferred trigger events pending, so the transaction must not have written, before the
    call, to the table or to a table its foreign keys reference (or must have run `SET
    CONSTRAINTS ALL IMMEDIATE` since).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("rebuild_table must run inside transaction.atomic()")
    if lock_attempts < 1:
        raise ValueError("lock_attempts must be at least 1")
    with connection.cursor() as cursor:
        swap = _Rebuild(cursor, lock_timeout, lock_attempts)
        return swap.run(table, select_sql, params, columns, keep_sql, keep_params, analyze)


class _Rebuild:
    def __init__(self, cursor, lock_timeout: float | None, lock_attempts: int):
        self.cursor = cursor
        self.lock_timeout = lock_timeout
        self.lock_attempts = lock_attempts

    def run(self, table, select_sql, params, columns, keep_sql, keep_params, analyze) -> int:
        oid = self._value("SELECT to_regclass(%s)::oid", [self._render(sql.Identifier(table))])
        if oid is None:
            raise UnsupportedTable(f"no table {table!r} on the search path")
        if keep_sql is not None:
            level = self._value("SELECT current_setting('transaction_isolation')")
            if level != "read committed":
                raise ValueError(f"keep_sql needs a READ COMMITTED transaction, not {level}")
        first = sql.SQL(self._value("SELECT %s::regclass::text", [oid]))
        self._attempt(lambda: self._lock([first], "SHARE UPDATE EXCLUSIVE"))
        old = read_table(self.cursor, oid)
        refuse_unsupported(self.cursor, old)
        if keep_sql is not None and not old.primary_key:
            raise UnsupportedTable(f"{table}: keep_sql needs a primary key to match rows on")
        target = list(columns) if columns is not None else old.insertable
        unknown = [c for c in target if c not in old.insertable]
        if unknown or len(set(target)) != len(target):
            raise ValueError(f"{table}: not insertable, or repeated: {target}")
        before = table_shape(self.cursor, oid)

        orig = sql.Identifier(old.schema, old.name)
        new = sql.Identifier(old.schema, temp_name(old.name))
        self._create(old, orig, new)
        rows = self._insert(new, target, select_sql, params)
        renames = self._indexes(old, new)
        if analyze:
            self._ddl(sql.SQL("ANALYZE {}").format(new))
        self._foreign_keys(old, new)

        # One attempt takes both locks of the swap and reads the kept rows between them: if the
        # second lock times out, rolling the attempt back lets go of the first too, so a
        # session holding a referenced table while it waits for this one can finish.
        rows += self._attempt(
            lambda: self._swap_locks_and_kept_rows(old, new, keep_sql, keep_params)
        )
        self._sync_identity(old, new)
        for column, sequence in old.owned_sequences.items():
            self._ddl(
                sql.SQL("ALTER SEQUENCE {} OWNED BY {}.{}").format(
                    sql.SQL(sequence), new, sql.Identifier(column)
                )
            )
        self._ddl(sql.SQL("DROP TABLE {}").format(orig))
        self._ddl(sql.SQL("ALTER TABLE {} RENAME TO {}").format(new, sql.Identifier(old.name)))
        for rename in renames:
            self._ddl(rename(orig))
        for column, name in old.identity_sequences.items():
            current = self._identity_sequence(orig, column)
            if current != name:
                self._ddl(
                    sql.SQL("ALTER SEQUENCE {} RENAME TO {}").format(
                        sql.Identifier(old.schema, current), sql.Identifier(name)
                    )
                )

        after = table_shape(
            self.cursor, self._value("SELECT %s::regclass::oid", [self._render(orig)])
        )
        if after != before:
            raise SchemaMismatch(f"{table}: the rebuilt table differs: {shape_diff(before, after)}")
        return rows

    # -- plumbing ----------------------------------------------------------------------------

    def _render(self, composable: sql.Composable) -> str:
        return composable.as_string(connection.connection)

    def _ddl(self, statement: sql.Composable) -> None:
        # Without parameters, so a '%' in a name or a definition is not taken for a placeholder.
        self.cursor.execute(self._render(statement))

    def _value(self, query: str, params: Params = None):
        self.cursor.execute(query, params)
        row = self.cursor.fetchone()
        return row[0] if row else None

    def _around(self, head: sql.Composable, caller_sql: str, tail: sql.Composable, params) -> str:
        """Our SQL around the caller's; when the caller's placeholders are going to be
        expanded, a '%' in ours (a name) must not be read as one."""
        parts = [self._render(head), self._render(tail)]
        if params is not None:
            parts = [part.replace("%", "%%") for part in parts]
        return f"{parts[0]}\n{caller_sql}\n{parts[1]}"

    def _identity_sequence(self, table: sql.Composable, column: str) -> str:
        return self._value(
            "SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
            "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "WHERE d.refobjid = %s::regclass AND d.deptype = 'i' AND s.relkind = 'S' "
            "AND a.attname = %s",
            [self._render(table), column],
        )

    def _lock(self, tables: list[sql.Composable], mode: str) -> None:
        self._ddl(
            sql.SQL("LOCK TABLE {} IN {} MODE").format(sql.SQL(", ").join(tables), sql.SQL(mode))
        )

    def _attempt(self, work: Callable[[], Any]) -> Any:
        """Run `work`, which takes locks; with a `lock_timeout`, in a savepoint per attempt, so
        a lock not granted in time undoes only that attempt (and lets go of what it took)."""
        if self.lock_timeout is None:
            return work()
        previous = self._value("SELECT current_setting('lock_timeout')")
        timeout = f"{max(1, round(self.lock_timeout * 1000))}ms"
        for attempt in range(1, self.lock_attempts + 1):
            try:
                with transaction.atomic():
                    # Transaction-local: the savepoint's rollback undoes it too.
                    self.cursor.execute("SELECT set_config('lock_timeout', %s, true)", [timeout])
                    result = work()
            except OperationalError as exc:
                if not isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
                    raise
                if attempt == self.lock_attempts:
                    exc.add_note(
                        f"rebuild_table: locks not granted in {attempt} attempts "
                        f"of {self.lock_timeout} s"
                    )
                    raise
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                self.cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
                return result
        raise AssertionError("unreachable")

    # -- steps -------------------------------------------------------------------------------

    def _create(self, old: Table, orig: sql.Identifier, new: sql.Identifier) -> None:
        options = [option_sql(o) for o in old.options]
        options += [option_sql(o, prefix="toast") for o in old.toast_options]
        self._ddl(
            sql.SQL("CREATE {}TABLE {} (LIKE {} {}) USING {}{}").format(
                sql.SQL("UNLOGGED " if old.persistence == "u" else ""),
                new,
                orig,
                sql.SQL(LIKE_OPTIONS),
                sql.Identifier(old.access_method),
                sql.SQL(" WITH ({})").format(sql.SQL(", ").join(options))
                if options
                else sql.SQL(""),
            )
        )
        owner = self._value(
            "SELECT relowner::regrole::text FROM pg_class WHERE oid = %s::regclass",
            [self._render(new)],
        )
        if owner != old.owner:  # also hands the identity sequences over
            self._ddl(sql.SQL("ALTER TABLE {} OWNER TO {}").format(new, sql.SQL(old.owner)))
        self._copy_privileges(orig, new, "TABLE", "r")
        if old.comment is not None:
            self._ddl(sql.SQL("COMMENT ON TABLE {} IS {}").format(new, sql.Literal(old.comment)))
        for column, stattarget, column_options in old.column_settings:
            if stattarget is not None and stattarget >= 0:
                self._ddl(
                    sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STATISTICS {}").format(
                        new, sql.Identifier(column), sql.Literal(stattarget)
                    )
                )
            if column_options:
                self._ddl(
                    sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET ({})").format(
                        new,
                        sql.Identifier(column),
                        sql.SQL(", ").join(map(option_sql, column_options)),
                    )
                )
        for column, name in old.identity_sequences.items():
            source = sql.Identifier(old.schema, name)
            target = sql.Identifier(old.schema, self._identity_sequence(new, column))
            # LIKE does not copy the sequence's type (an integer column gets a bigint one).
            self.cursor.execute(
                "SELECT seqtypid::regtype::text, seqincrement, seqmin, seqmax, seqstart, "
                "seqcache, seqcycle FROM pg_sequence WHERE seqrelid = %s::regclass",
                [self._render(source)],
            )
            kind, increment, low, high, start, cache, cycle = self.cursor.fetchone()
            self._ddl(
                sql.SQL(
                    "ALTER SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} "
                    "START WITH {} CACHE {} {}"
                ).format(
                    target,
                    sql.SQL(kind),
                    *map(sql.Literal, (increment, low, high, start, cache)),
                    sql.SQL("CYCLE" if cycle else "NO CYCLE"),
                )
            )
            self._copy_privileges(source, target, "SEQUENCE", "s")
        self._sync_identity(old, new)

    def _sync_identity(self, old: Table, new: sql.Identifier) -> None:
        # LIKE ... INCLUDING IDENTITY starts a fresh sequence at its START value. Continue from
        # the original's, before the insert (rows taking generated ids) and again at the swap
        # (ids the original handed out meanwhile).
        for column, name in old.identity_sequences.items():
            source = sql.Identifier(old.schema, name)
            target = sql.Identifier(old.schema, self._identity_sequence(new, column))
            self._ddl(
                sql.SQL(
                    "SELECT setval({}, greatest(o.last_value, n.last_value), "
                    "o.is_called OR n.is_called) FROM {} o, {} n"
                ).format(sql.Literal(self._render(target)), source, target)
            )

    def _copy_privileges(
        self, source: sql.Identifier, target: sql.Identifier, keyword: str, kind: str
    ) -> None:
        wanted = relation_privileges(self.cursor, self._render(source), kind)
        present = relation_privileges(self.cursor, self._render(target), kind)
        if present == wanted:
            return
        for grantee in sorted({grantee for grantee, _privilege, _grantable in present}):
            self._ddl(
                sql.SQL("REVOKE ALL ON {} {} FROM {}").format(
                    sql.SQL(keyword), target, grantee_sql(grantee)
                )
            )
        for grantee, privilege, grantable in sorted(wanted):
            if privilege not in PRIVILEGES:
                raise UnsupportedTable(f"unknown privilege {privilege!r}")
            self._ddl(
                sql.SQL("GRANT {} ON {} {} TO {}{}").format(
                    sql.SQL(privilege),
                    sql.SQL(keyword),
                    target,
                    grantee_sql(grantee),
                    sql.SQL(" WITH GRANT OPTION" if grantable else ""),
                )
            )

    def _insert(self, new: sql.Identifier, target: list[str], select_sql: str, params) -> int:
        head = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE").format(
            new, sql.SQL(", ").join(map(sql.Identifier, target))
        )
        self.cursor.execute(self._around(head, select_sql, sql.SQL(""), params), params)
        return self.cursor.rowcount

    def _indexes(self, old: Table, new: sql.Identifier) -> list[Callable]:
        """Build every index under a temporary name; return the renames (functions of the
        table's final name) to run once the original is gone."""
        renames: list[Callable] = []
        constraints = {c.name: c for c in old.constraints}
        for index in old.indexes:
            temp = sql.Identifier(temp_name(index.name))
            temp_index = sql.Identifier(old.schema, temp_name(index.name))
            if index.constraint is not None:
                constraint = constraints[index.constraint]
                self._add_constraint(
                    new, temp_name(index.name), constraint.definition, constraint.comment
                )
                # Renaming the constraint renames its index with it.
                renames.append(
                    lambda table, temp=temp, name=constraint.name: sql.SQL(
                        "ALTER TABLE {} RENAME CONSTRAINT {} TO {}"
                    ).format(table, temp, sql.Identifier(name))
                )
            else:
                self._ddl(
                    sql.SQL("CREATE {}INDEX {} ON {} USING {}").format(
                        sql.SQL("UNIQUE " if index.unique else ""),
                        temp,
                        new,
                        sql.SQL(index.method_and_keys),
                    )
                )
                renames.append(
                    lambda table, temp=temp_index, name=index.name: sql.SQL(
                        "ALTER INDEX {} RENAME TO {}"
                    ).format(temp, sql.Identifier(name))
                )
            if index.comment is not None:
                self._ddl(
                    sql.SQL("COMMENT ON INDEX {} IS {}").format(
                        temp_index, sql.Literal(index.comment)
                    )
                )
            if index.clustered:
                self._ddl(sql.SQL("ALTER TABLE {} CLUSTER ON {}").format(new, temp))
            if index.replica_identity:
                self._ddl(
                    sql.SQL("ALTER TABLE {} REPLICA IDENTITY USING INDEX {}").format(new, temp)
                )
        if old.replica_identity in ("f", "n"):
            self._ddl(
                sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(
                    new, sql.SQL("FULL" if old.replica_identity == "f" else "NOTHING")
                )
            )
        return renames

    def _foreign_keys(self, old: Table, new: sql.Identifier) -> None:
        foreign_keys = [c for c in old.constraints if c.kind == "f"]
        if not foreign_keys:
            return
        # What ADD FOREIGN KEY takes anyway; locking first puts the wait under lock_timeout.
        referenced = [sql.SQL(name) for name in old.referenced]
        self._attempt(lambda: self._lock(referenced, "SHARE ROW EXCLUSIVE"))
        for constraint in foreign_keys:
            self._add_constraint(
                new,
                constraint.name,
                validated_definition(constraint.definition),
                constraint.comment,
            )

    def _add_constraint(
        self, table: sql.Identifier, name: str, definition: str, comment: str | None
    ) -> None:
        self._ddl(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                table, sql.Identifier(name), sql.SQL(definition)
            )
        )
        if comment is not None:
            self._ddl(
                sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
                    sql.Identifier(name), table, sql.Literal(comment)
                )
            )

    def _swap_locks_and_kept_rows(self, old: Table, new: sql.Identifier, keep_sql, keep_params):
        """ACCESS EXCLUSIVE on the table, the kept rows, then ACCESS EXCLUSIVE on the tables
        the foreign keys reference (DROP removes the foreign keys' triggers from them), which
        their readers therefore wait for only from here. Returns the change in row count."""
        self._lock([sql.Identifier(old.schema, old.name)], "ACCESS EXCLUSIVE")
        referenced = [sql.SQL(name) for name in old.referenced]
        # NOT VALID constraints went on validated, so the new rows were checked against them
        # as the original checks new rows. Kept rows may predate them: drop them, and put them
        # back NOT VALID (no scan) once the kept rows are in.
        not_valid = [c for c in old.constraints if c.kind in ("c", "f") and not c.validated]
        if any(c.kind == "f" for c in not_valid):
            self._lock(referenced, "ACCESS EXCLUSIVE")  # dropping one needs it already
        for constraint in not_valid:
            self._ddl(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    new, sql.Identifier(constraint.name)
                )
            )
        change = 0
        if keep_sql is not None:
            change = self._keep(old, new, keep_sql, keep_params)
        for constraint in not_valid:
            self._add_constraint(new, constraint.name, constraint.definition, constraint.comment)
        if referenced:
            self._lock(referenced, "ACCESS EXCLUSIVE")
        return change

    def _keep(self, old: Table, new: sql.Identifier, keep_sql: str, keep_params) -> int:
        kept = sql.Identifier("pgswap_kept")
        fresh = sql.Identifier("pgswap_new")
        match = sql.SQL(" AND ").join(
            sql.SQL("{}.{} = {}.{}").format(fresh, sql.Identifier(c), kept, sql.Identifier(c))
            for c in old.primary_key
        )
        delete = sql.SQL("DELETE FROM {} AS {} USING (").format(new, fresh)
        where = sql.SQL(") AS {} WHERE {}").format(kept, match)
        self.cursor.execute(self._around(delete, keep_sql, where, keep_params), keep_params)
        replaced = self.cursor.rowcount
        insert = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM (").format(
            new,
            sql.SQL(", ").join(map(sql.Identifier, old.insertable)),
            sql.SQL(", ").join(
                sql.SQL("{}.{}").format(kept, sql.Identifier(c)) for c in old.insertable
            ),
        )
        alias = sql.SQL(") AS {}").format(kept)
        self.cursor.execute(self._around(insert, keep_sql, alias, keep_params), keep_params)
        return self.cursor.rowcount - replaced
