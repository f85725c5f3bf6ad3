"""Rebuild a whole table from a SELECT and swap it in under the original's name.

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
   same (0.12 s at 200k rows) and, inside one transaction, holds the same locks to the commit,
   so the plain add is used. Constraints that are NOT VALID on the original go on validated
   (CHECKs at step 3, foreign keys here), so the new rows are checked as the original checks
   new rows, and are made NOT VALID again at step 7 around the kept rows, which may predate
   them.
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

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg.errors
from django.db import OperationalError, connection, transaction
from psycopg import sql

NAME_MAX = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer identifiers
NEXT = "__next"
LIKE_OPTIONS = (
    "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING IDENTITY "
    "INCLUDING STORAGE INCLUDING COMMENTS INCLUDING COMPRESSION"
)
# Privilege keywords aclexplode() reports (MAINTAIN since PostgreSQL 17).
PRIVILEGES = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}
)
# The per-column options PostgreSQL defines. Some builds keep bookkeeping of their own in
# attoptions; that is not ours to copy or compare.
COLUMN_OPTIONS = ("n_distinct", "n_distinct_inherited")

Params = Sequence[Any] | Mapping[str, Any] | None


class UnsupportedTable(Exception):
    """The table has something the rebuild would lose or break; nothing was changed."""


class SchemaMismatch(RuntimeError):
    """The rebuilt table does not look like the original. Raised inside the caller's
    `transaction.atomic()`, it rolls the whole rebuild back."""


@dataclass
class _Constraint:
    name: str
    kind: str  # pg_constraint.contype: p, u, x, f, c, n (NOT NULL, PostgreSQL 18)
    definition: str
    validated: bool
    comment: str | None


@dataclass
class _Index:
    name: str
    definition: str
    constraint: str | None  # the primary key / unique / exclusion constraint it backs
    clustered: bool
    replica_identity: bool
    comment: str | None
    unique: bool
    # The definition after "CREATE [UNIQUE] INDEX <name> ON <table> USING ", which names
    # neither; None if pg_get_indexdef wrote something else (refused).
    method_and_keys: str | None = None


@dataclass
class _Table:
    oid: int
    schema: str
    name: str
    owner: str  # quoted role name
    access_method: str
    persistence: str
    options: list[str]
    toast_options: list[str]
    replica_identity: str
    comment: str | None
    insertable: list[str]  # columns without generated ones, in table order
    primary_key: list[str]
    column_settings: list[tuple[str, int | None, list[str]]]  # name, stattarget, options
    constraints: list[_Constraint] = field(default_factory=list)
    indexes: list[_Index] = field(default_factory=list)
    identity_sequences: dict[str, str] = field(default_factory=dict)  # column -> name
    owned_sequences: dict[str, str] = field(default_factory=dict)  # column -> regclass text
    referenced: list[str] = field(default_factory=list)  # regclass texts, in lock order


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
        old = _read_table(self.cursor, oid)
        _refuse_unsupported(self.cursor, old)
        if keep_sql is not None and not old.primary_key:
            raise UnsupportedTable(f"{table}: keep_sql needs a primary key to match rows on")
        target = list(columns) if columns is not None else old.insertable
        unknown = [c for c in target if c not in old.insertable]
        if unknown or len(set(target)) != len(target):
            raise ValueError(f"{table}: not insertable, or repeated: {target}")
        before = _shape(self.cursor, oid)

        orig = sql.Identifier(old.schema, old.name)
        new = sql.Identifier(old.schema, _temp_name(old.name))
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

        after = _shape(self.cursor, self._value("SELECT %s::regclass::oid", [self._render(orig)]))
        if after != before:
            raise SchemaMismatch(f"{table}: the rebuilt table differs: {_diff(before, after)}")
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

    def _create(self, old: _Table, orig: sql.Identifier, new: sql.Identifier) -> None:
        options = [_option(o) for o in old.options]
        options += [_option(o, prefix="toast") for o in old.toast_options]
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
                        sql.SQL(", ").join(map(_option, column_options)),
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

    def _sync_identity(self, old: _Table, new: sql.Identifier) -> None:
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
        wanted = _privileges(self.cursor, self._render(source), kind)
        present = _privileges(self.cursor, self._render(target), kind)
        if present == wanted:
            return
        for grantee in sorted({grantee for grantee, _privilege, _grantable in present}):
            self._ddl(
                sql.SQL("REVOKE ALL ON {} {} FROM {}").format(
                    sql.SQL(keyword), target, _grantee(grantee)
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
                    _grantee(grantee),
                    sql.SQL(" WITH GRANT OPTION" if grantable else ""),
                )
            )

    def _insert(self, new: sql.Identifier, target: list[str], select_sql: str, params) -> int:
        head = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE").format(
            new, sql.SQL(", ").join(map(sql.Identifier, target))
        )
        self.cursor.execute(self._around(head, select_sql, sql.SQL(""), params), params)
        return self.cursor.rowcount

    def _indexes(self, old: _Table, new: sql.Identifier) -> list[Callable]:
        """Build every index under a temporary name; return the renames (functions of the
        table's final name) to run once the original is gone."""
        renames: list[Callable] = []
        constraints = {c.name: c for c in old.constraints}
        for index in old.indexes:
            temp = sql.Identifier(_temp_name(index.name))
            temp_index = sql.Identifier(old.schema, _temp_name(index.name))
            if index.constraint is not None:
                constraint = constraints[index.constraint]
                self._add_constraint(
                    new, _temp_name(index.name), constraint.definition, constraint.comment
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

    def _foreign_keys(self, old: _Table, new: sql.Identifier) -> None:
        foreign_keys = [c for c in old.constraints if c.kind == "f"]
        if not foreign_keys:
            return
        # What ADD FOREIGN KEY takes anyway; locking first puts the wait under lock_timeout.
        referenced = [sql.SQL(name) for name in old.referenced]
        self._attempt(lambda: self._lock(referenced, "SHARE ROW EXCLUSIVE"))
        for constraint in foreign_keys:
            self._add_constraint(
                new, constraint.name, _validated(constraint.definition), constraint.comment
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

    def _swap_locks_and_kept_rows(self, old: _Table, new: sql.Identifier, keep_sql, keep_params):
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

    def _keep(self, old: _Table, new: sql.Identifier, keep_sql: str, keep_params) -> int:
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


# -- the catalog -------------------------------------------------------------------------------


def _read_table(cursor, oid: int) -> _Table:
    cursor.execute(
        """
        SELECT n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
               c.relowner::regrole::text, am.amname, c.relpersistence,
               coalesce(c.reloptions, '{}'), coalesce(t.reloptions, '{}'), c.relreplident,
               obj_description(c.oid, 'pg_class')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_am am ON am.oid = c.relam
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.oid = %s
        """,
        [oid],
    )
    # `qualified` as pg_get_indexdef writes the table: quote_ident(schema).quote_ident(name).
    schema, name, qualified, owner, am, persistence, options, toast, replident, comment = (
        cursor.fetchone()
    )
    cursor.execute(
        """
        SELECT a.attname, a.attgenerated <> '', a.attstattarget,
               array(SELECT o FROM unnest(a.attoptions) o
                     WHERE split_part(o, '=', 1) = ANY(%s) ORDER BY o)
        FROM pg_attribute a
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        [list(COLUMN_OPTIONS), oid],
    )
    rows = cursor.fetchall()
    table = _Table(
        oid=oid,
        schema=schema,
        name=name,
        owner=owner,
        access_method=am,
        persistence=persistence,
        options=list(options),
        toast_options=list(toast),
        replica_identity=replident,
        comment=comment,
        insertable=[column for column, generated, _t, _o in rows if not generated],
        primary_key=[],
        column_settings=[(column, target, list(opts)) for column, _g, target, opts in rows],
    )
    cursor.execute(
        """
        SELECT con.conname, con.contype, pg_get_constraintdef(con.oid), con.convalidated,
               obj_description(con.oid, 'pg_constraint'),
               CASE WHEN con.contype = 'f' THEN con.confrelid::regclass::text END,
               CASE WHEN con.contype = 'p' THEN
                   array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, pos)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
                         ORDER BY k.pos)
               END
        FROM pg_constraint con
        WHERE con.conrelid = %s
        ORDER BY con.contype = 'p' DESC, con.conname
        """,
        [oid],
    )
    for name, kind, definition, validated, comment, referenced, key in cursor.fetchall():
        table.constraints.append(_Constraint(name, kind, definition, validated, comment))
        if referenced is not None and referenced not in table.referenced:
            table.referenced.append(referenced)
        if key is not None:
            table.primary_key = list(key)
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid), con.conname, x.indisclustered,
               x.indisreplident, obj_description(x.indexrelid, 'pg_class'), x.indisunique,
               quote_ident(i.relname)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint con
               ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
              AND con.contype IN ('p', 'u', 'x')
        WHERE x.indrelid = %s
        ORDER BY x.indisprimary DESC, i.relname
        """,
        [oid],
    )
    for *row, quoted in cursor.fetchall():
        index = _Index(*row)
        head = f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {quoted} ON {qualified} USING "
        if index.definition.startswith(head):
            index.method_and_keys = index.definition[len(head) :]
        table.indexes.append(index)
    cursor.execute(
        """
        SELECT a.attname, s.relname, d.deptype, s.oid::regclass::text
        FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = %s AND d.deptype IN ('a', 'i')
        """,
        [oid],
    )
    for column, sequence, deptype, regclass in cursor.fetchall():
        if deptype == "i":
            table.identity_sequences[column] = sequence
        else:
            table.owned_sequences[column] = regclass
    return table


def _refuse_unsupported(cursor, table: _Table) -> None:
    """Raise `UnsupportedTable` for anything the swap would drop silently or cannot drop."""
    oid = table.oid

    def names(query: str, params=None) -> list[str]:
        cursor.execute(query, params if params is not None else {"t": oid})
        return [row[0] for row in cursor.fetchall()]

    problems = []
    cursor.execute(
        "SELECT relkind, relpersistence, relispartition, reloftype <> 0, reltablespace <> 0, "
        "relrowsecurity OR relforcerowsecurity FROM pg_class WHERE oid = %s",
        [oid],
    )
    kind, persistence, partition, typed, tablespace, row_security = cursor.fetchone()
    if kind != "r" or partition or typed:
        problems.append("not a plain table (partitioned, a partition, typed, or no table)")
    if persistence == "t":
        problems.append("a temporary table")
    if tablespace or names(
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %(t)s AND i.reltablespace <> 0"
    ):
        problems.append("it or an index lives in a non-default tablespace")
    into = names(
        "SELECT format('%%s on %%s', conname, conrelid::regclass) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = %(t)s ORDER BY 1"
    )
    if into:
        problems.append(
            "foreign keys point into it and would be lost with the old table: " + ", ".join(into)
        )
    checks = [
        (
            "triggers",
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %(t)s AND NOT tgisinternal",
        ),
        ("rules", "SELECT rulename FROM pg_rewrite WHERE ev_class = %(t)s"),
        ("row-level security policies", "SELECT polname FROM pg_policy WHERE polrelid = %(t)s"),
        (
            "inheritance",
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %(t)s "
            "UNION ALL SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = %(t)s",
        ),
        (
            "publications",
            "SELECT p.pubname FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid "
            "WHERE r.prrelid = %(t)s",
        ),
        ("extended statistics", "SELECT stxname FROM pg_statistic_ext WHERE stxrelid = %(t)s"),
        (
            "column privileges",
            "SELECT attname FROM pg_attribute WHERE attrelid = %(t)s AND attacl IS NOT NULL",
        ),
        (
            "NOT VALID not-null constraints",
            "SELECT conname FROM pg_constraint WHERE conrelid = %(t)s AND contype = 'n' "
            "AND NOT convalidated",
        ),
        # Whatever else depends on the table or its row type (views, SQL functions, columns
        # of that type) would make DROP fail; say so now, before any work.
        (
            "dependent objects",
            """
            SELECT DISTINCT pg_describe_object(d.classid, d.objid, 0)
            FROM pg_depend d
            WHERE d.deptype = 'n'
              AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = %(t)s)
                   OR (d.refclassid = 'pg_type'::regclass AND d.refobjid IN (
                       SELECT reltype FROM pg_class WHERE oid = %(t)s
                       UNION ALL
                       SELECT typarray FROM pg_type
                       WHERE oid = (SELECT reltype FROM pg_class WHERE oid = %(t)s))))
              AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (
                       SELECT oid FROM pg_constraint WHERE conrelid = %(t)s OR confrelid = %(t)s))
              AND NOT (d.classid = 'pg_attrdef'::regclass AND d.objid IN (
                       SELECT oid FROM pg_attrdef WHERE adrelid = %(t)s))
              AND NOT (d.classid = 'pg_class'::regclass AND d.objid IN (
                       SELECT indexrelid FROM pg_index WHERE indrelid = %(t)s))
            ORDER BY 1
            """,
        ),
    ]
    if row_security:
        problems.append("row-level security is enabled")
    for what, query in checks:
        found = names(query)
        if found:
            problems.append(f"{what}: {', '.join(found)}")
    taken = names(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s)",
        [
            table.schema,
            [_temp_name(table.name), *(_temp_name(i.name) for i in table.indexes)],
        ],
    )
    if taken:
        problems.append(f"the temporary names are taken: {', '.join(taken)}")
    odd = [i.definition for i in table.indexes if i.constraint is None and not i.method_and_keys]
    if odd:
        problems.append(f"index definitions not understood: {'; '.join(odd)}")
    if problems:
        raise UnsupportedTable(
            f"rebuild_table({table.name}): refused, nothing was changed: " + "; ".join(problems)
        )


def _shape(cursor, oid: int) -> dict[str, Any]:
    """What must be identical before and after the swap, names included."""
    shape: dict[str, Any] = {}
    cursor.execute(
        """
        SELECT c.relname, c.relowner::regrole::text, am.amname, c.relpersistence, c.relkind,
               array(SELECT unnest(coalesce(c.reloptions, '{}')) ORDER BY 1),
               array(SELECT unnest(coalesce(t.reloptions, '{}')) ORDER BY 1),
               c.relreplident, c.relrowsecurity, obj_description(c.oid, 'pg_class')
        FROM pg_class c
        LEFT JOIN pg_am am ON am.oid = c.relam
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.oid = %s
        """,
        [oid],
    )
    shape["table"] = cursor.fetchone()
    shape["privileges"] = _privileges(cursor, oid, "r")
    cursor.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attgenerated, a.attidentity,
               co.collname, a.attstorage, a.attcompression, a.attstattarget,
               array(SELECT o FROM unnest(a.attoptions) o
                     WHERE split_part(o, '=', 1) = ANY(%s) ORDER BY o),
               col_description(a.attrelid, a.attnum)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        [list(COLUMN_OPTIONS), oid],
    )
    shape["columns"] = cursor.fetchall()
    cursor.execute(
        """
        SELECT conname, contype, pg_get_constraintdef(oid), condeferrable, condeferred,
               convalidated, obj_description(oid, 'pg_constraint')
        FROM pg_constraint WHERE conrelid = %s ORDER BY conname
        """,
        [oid],
    )
    shape["constraints"] = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid), x.indisunique, x.indisprimary,
               x.indisclustered, x.indisreplident, obj_description(x.indexrelid, 'pg_class')
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s ORDER BY i.relname
        """,
        [oid],
    )
    shape["indexes"] = cursor.fetchall()
    cursor.execute(
        """
        SELECT a.attname, d.deptype, s.oid, s.relname, s.relowner::regrole::text,
               q.seqtypid::regtype::text, q.seqstart, q.seqincrement, q.seqmax, q.seqmin,
               q.seqcache, q.seqcycle
        FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_sequence q ON q.seqrelid = s.oid
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = %s AND d.deptype IN ('a', 'i')
        ORDER BY a.attname
        """,
        [oid],
    )
    shape["sequences"] = [
        (column, deptype, name, owner, *options, _privileges(cursor, seq_oid, "s"))
        for column, deptype, seq_oid, name, owner, *options in cursor.fetchall()
    ]
    return shape


def _privileges(cursor, relation, kind: str) -> set[tuple[str, str, bool]]:
    """(grantee, privilege, grantable) of a relation (oid or name), defaults made explicit."""
    cursor.execute(
        """
        SELECT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE e.grantee::regrole::text END,
               e.privilege_type, e.is_grantable
        FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault(%s, c.relowner))) e
        WHERE c.oid = %s::regclass
        """,
        [kind, str(relation)],
    )
    return set(cursor.fetchall())


def _grantee(grantee: str) -> sql.Composable:
    # regrole::text is already a quoted identifier; PUBLIC is the keyword.
    return sql.SQL(grantee)


def _option(option: str, prefix: str | None = None) -> sql.Composable:
    key, _sep, value = option.partition("=")
    name = sql.Identifier(key)
    if prefix is not None:
        name = sql.SQL("{}.{}").format(sql.Identifier(prefix), name)
    return sql.SQL("{} = {}").format(name, sql.Literal(value))


def _validated(definition: str) -> str:
    """A constraint definition without its NOT VALID (pg_get_constraintdef puts it last)."""
    return definition.removesuffix(" NOT VALID")


def _temp_name(name: str) -> str:
    candidate = name + NEXT
    if len(candidate.encode()) <= NAME_MAX:
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    room = NAME_MAX - len(NEXT) - len(digest) - 1
    return name.encode()[:room].decode(errors="ignore") + "_" + digest + NEXT


def _diff(before: dict, after: dict) -> str:
    parts = []
    for key in before:
        if before[key] != after.get(key):
            parts.append(f"{key}: {before[key]!r} -> {after.get(key)!r}")
    return "; ".join(parts)
