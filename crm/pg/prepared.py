"""Server-side prepared statements run by name inside a multi-statement query.

`Prepared` names a statement by a hash of its SQL and `prepare` PREPAREs, once per database
session, those the session lacks; calling a `Prepared` gives the ``EXECUTE`` to send. Used by
the campaign sender's per-message gate (campaigns.services.delivery), and through
`execute_prepared` by the till's calculation (loyalty.selectors), whose one statement cost
PostgreSQL twice as much to plan as to run.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from functools import cached_property

import psycopg.errors
from django.db import ProgrammingError, connection

Statement = tuple[str, list]


@dataclass(frozen=True)
class Prepared:
    """A statement PostgreSQL parses and plans once per connection.

    Sent as ``EXECUTE name(...)`` inside a multi-statement query, so a caller still pays one
    round trip (the campaign sender: per message, whose gate's join and cap subquery used to
    cost PostgreSQL more CPU to plan than to execute). The name carries a hash of the SQL,
    so a changed statement (another channel, another cap window, a new release) never runs
    under an old plan. Prepared statements belong to the session and survive rollbacks;
    `prepare` checks `pg_prepared_statements` once per batch, so a reconnect is harmless.
    """

    base: str
    types: str
    sql: str

    @cached_property
    def name(self) -> str:
        digest = hashlib.sha256(f"{self.types}|{self.sql}".encode()).hexdigest()[:12]
        return f"clientele_{self.base}_{digest}"

    def __call__(self, *params) -> Statement:
        placeholders = ", ".join(["%s"] * len(params))
        return f"EXECUTE {self.name}({placeholders})", list(params)


def prepare(statements: list[Prepared]) -> None:
    """PREPARE those of `statements` this database session does not have yet."""
    names = {statement.name: statement for statement in statements}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)", [list(names)]
        )
        missing = set(names) - {row[0] for row in cursor.fetchall()}
        for name in sorted(missing):
            statement = names[name]
            types = f" ({statement.types})" if statement.types else ""
            cursor.execute(f"PREPARE {name}{types} AS {statement.sql}")


# Statements each open database session is known to have, by its psycopg connection: a hot path
# (the till's calculation) then pays no check per call, and a reconnect starts a new set.
_sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prepared_from(base: str, sql: str) -> Prepared | None:
    """`sql` written with Django's `%s` placeholders as a statement to prepare, its parameter
    types left to PostgreSQL to infer from where they stand; None when the text has a literal
    `%` (escaped as `%%`), which the plain statement should keep."""
    if "%%" in sql:
        return None
    parts = sql.split("%s")
    text = "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))
    return Prepared(base=base, types="", sql=text)


def execute_prepared(cursor, statement: Prepared, params: list) -> None:
    """Run `statement` on `cursor` (a Django cursor), PREPAREing it first in this session if
    the session may lack it. PREPARE is not undone by a rollback, so once seen it stays.

    A session can still lose its statements behind our back (DEALLOCATE ALL, DISCARD ALL from a
    pooler that hands the connection on): the statement is then prepared again and run once
    more, unless the failure has aborted the caller's transaction, in which case this process
    forgets the session's statements, so that the caller's retry prepares them."""
    raw = connection.connection
    known = _sessions.setdefault(raw, set()) if raw is not None else set()
    if statement.name not in known:
        prepare([statement])
        known.add(statement.name)
    try:
        cursor.execute(*statement(*params))
    except ProgrammingError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.InvalidSqlStatementName):
            raise
        known.clear()
        if connection.in_atomic_block:
            raise
        prepare([statement])
        known.add(statement.name)
        cursor.execute(*statement(*params))


def forget_session() -> None:
    """Forget which statements this connection's session holds (after a deliberate DEALLOCATE
    ALL), so that the next `execute_prepared` checks again."""
    raw = connection.connection
    if raw is not None:
        _sessions.pop(raw, None)
