"""Statements PostgreSQL runs while this process works on something else.

`running(statements)` sends them to the session's server process in pipeline mode and returns
at once; leaving the `with` block waits for them and raises the first error among them (as a
`django.db` exception, as a cursor would). The two processes then work at the same time, one
on each core: the nightly metrics run has the server compute favourite categories and holiday
affinities while Python fits the CLV models (analytics.metrics.run).

Inside the block the connection is busy: the block must not touch the database (no ORM call,
no cursor, no progress record), or psycopg would interleave its query with the pipeline's.
The statements run in the session, so they see and create its temporary tables, inside the
caller's transaction if there is one (a test's, say), else together in one implicit
transaction. Parameters are bound client-side, as Django binds them, so the SQL is the same
as the one `cursor.execute` would have sent.

`using` runs them on another Django connection instead (`second_connection()`): a second
server process, so they may run while this session's own statements do, on the other core.
That session sees only committed data and its own temporary tables, and in autocommit mode
the statements form one implicit transaction, committed when the block is left without error
(an error rolls all of them back).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

Statement = tuple[str, Mapping[str, Any] | Sequence[Any] | None]

__all__ = ["Statement", "running", "second_connection"]


@contextmanager
def second_connection(alias: str = DEFAULT_DB_ALIAS) -> Iterator[BaseDatabaseWrapper]:
    """A new connection to the database of `alias` (not the thread's shared one), closed on
    exit, which ends its session and drops its temporary tables."""
    other = connections.create_connection(alias)
    try:
        other.ensure_connection()
        yield other
    finally:
        other.close()


@contextmanager
def running(
    statements: Sequence[Statement], using: BaseDatabaseWrapper | None = None
) -> Iterator[None]:
    """Send `statements` (SQL with Django-style parameters) and wait for them on exit."""
    db = using or connection
    db.ensure_connection()
    raw = db.connection
    render = psycopg.ClientCursor(raw)
    texts = [render.mogrify(sql, params) if params else sql for sql, params in statements]
    with db.wrap_database_errors, raw.pipeline():
        # A plain cursor: psycopg's client-side binding cursor does not support pipelines, and
        # the texts carry their parameters already.
        cursor = psycopg.Cursor(raw)
        for text in texts:
            cursor.execute(text)
        # The queries are sent and the server works on them; leaving the pipeline syncs and
        # collects their results.
        yield
