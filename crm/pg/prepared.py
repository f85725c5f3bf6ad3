"""Server-side prepared statements run by name inside a multi-statement query.

`Prepared` names a statement by a hash of its SQL and `prepare` PREPAREs, once per database
session, those the session lacks; calling a `Prepared` gives the ``EXECUTE`` to send. Used by
the campaign sender's per-message gate (campaigns.services.delivery).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from django.db import connection

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
            cursor.execute(f"PREPARE {name} ({statement.types}) AS {statement.sql}")
