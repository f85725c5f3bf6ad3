"""Accounts and the activation of held points: the locks every balance-changing write takes
first, and the rows that make earned points available once their hold has passed."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from ..models import ZERO, Account, Entry, EntryKind, Tier


@dataclass(slots=True, eq=False)
class Row:
    """A ledger row on its way in: what `entries_insert` appends.

    Bookings build these rather than `Entry` instances: a till's bulk upload writes two or three
    rows per card holder's receipt, and a model instance each cost more than the rest of the
    booking (bench/README.md, "Loyalty booking as plain rows"). `source` names another row of
    the same insert (an activation of a lot just earned) before either has an id.
    """

    account_id: int
    kind: str
    at: dt.datetime
    available_delta: Decimal = ZERO
    pending_delta: Decimal = ZERO
    debt_delta: Decimal = ZERO
    receipt_id: int | None = None
    return_doc_id: int | None = None
    source_id: int | None = None
    source: Row | None = None
    activates_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    bonus_key: str = ""
    reason: str = ""
    actor_id: int | None = None


_ENSURE_ACCOUNTS = """
INSERT INTO loyalty_account (customer_id, spend_12m, available, pending, debt, created_at)
SELECT c, 0, 0, 0, 0, now() FROM unnest(%s::bigint[]) AS c
ON CONFLICT (customer_id) DO NOTHING
"""
_ACCOUNT_COLUMNS = [f.attname for f in Account._meta.concrete_fields]
_TIER_COLUMNS = [f.attname for f in Tier._meta.concrete_fields]
# The accounts with their tiers, locked in id order. Plain SQL rather than the ORM's
# `select_for_update().select_related("tier")`: for a bulk upload's few hundred card holders
# the ORM's IN list of one parameter per id and its two instances per row cost more than the
# statement itself (bench/README.md, "Bulk ingestion with loyalty on").
_LOCK_ACCOUNTS = """
SELECT {account}, {tier}
FROM loyalty_account a LEFT JOIN loyalty_tier t ON t.id = a.tier_id
WHERE a.customer_id = ANY(%s::bigint[])
ORDER BY a.id
FOR UPDATE OF a
""".format(
    account=", ".join(f"a.{name}" for name in _ACCOUNT_COLUMNS),
    tier=", ".join(f"t.{name}" for name in _TIER_COLUMNS),
)


def id_array(ids) -> str:
    """Ids as a PostgreSQL array literal: psycopg spells a list parameter out element by
    element in Python, several times the cost of this for a batch's ids."""
    return "{" + ",".join(str(int(pk)) for pk in ids) + "}"


def _open_and_lock(customer_ids, lock_statement: str) -> list[tuple]:
    """Open the customers' missing accounts, then lock them all with `lock_statement` (which
    orders by id, so that two batches never deadlock); its rows, none for no customers."""
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    literal = id_array(ids)
    with connection.cursor() as cursor:
        cursor.execute(_ENSURE_ACCOUNTS, [literal])
        cursor.execute(lock_statement, [literal])
        return cursor.fetchall()


def accounts_lock(customer_ids: list[int]) -> dict[int, Account]:
    """Open missing accounts and lock them all, in id order so that two batches never
    deadlock; returns them by customer id, each with its tier."""
    rows = _open_and_lock(customer_ids, _LOCK_ACCOUNTS)
    if not rows:
        return {}
    width, db = len(_ACCOUNT_COLUMNS), connection.alias
    tiers: dict[int, Tier] = {}
    accounts = {}
    for row in rows:
        account = Account.from_db(db, _ACCOUNT_COLUMNS, row[:width])
        tier_id = row[width]
        if tier_id is None:
            account.tier = None
        else:
            if tier_id not in tiers:
                tiers[tier_id] = Tier.from_db(db, _TIER_COLUMNS, row[width:])
            account.tier = tiers[tier_id]
        accounts[account.customer_id] = account
    return accounts


@dataclass(slots=True, eq=False)
class Locked:
    """A locked account as a bulk booking needs it: its sums (advanced as rows are added) and
    its tier. Not a model instance: building an `Account` and decoding all its columns per card
    holder cost a bulk upload more Python time than the booking's arithmetic."""

    pk: int
    customer_id: int
    tier: Tier | None
    available: Decimal
    pending: Decimal
    debt: Decimal


_LOCK_SUMS = """
SELECT a.id, a.customer_id, a.tier_id, a.available, a.pending, a.debt
FROM loyalty_account a
WHERE a.customer_id = ANY(%s::bigint[])
ORDER BY a.id
FOR UPDATE
"""


def accounts_lock_sums(customer_ids: list[int], tiers: list[Tier]) -> dict[int, Locked]:
    """`accounts_lock` for a bulk booking: the same accounts, opened and locked in the same
    order, as `Locked` rows whose tier is taken from `tiers` (the rule book's) when it is
    there, read from the database otherwise."""
    rows = _open_and_lock(customer_ids, _LOCK_SUMS)
    if not rows:
        return {}
    by_id: dict[int | None, Tier | None] = {tier.pk: tier for tier in tiers}
    by_id[None] = None
    missing = {row[2] for row in rows} - by_id.keys()
    if missing:  # a tier created since the rule book was read
        by_id.update(Tier.objects.in_bulk(missing))
    return {
        customer_id: Locked(pk, customer_id, by_id.get(tier_id), available, pending, debt)
        for pk, customer_id, tier_id, available, pending, debt in rows
    }


def _refresh_sums(account: Account) -> None:
    fresh = Account.objects.filter(pk=account.pk).values("available", "pending", "debt").get()
    account.available, account.pending, account.debt = (
        fresh["available"],
        fresh["pending"],
        fresh["debt"],
    )


_DUE = """
SELECT e.id, e.account_id, e.expires_at,
       e.pending_delta + coalesce((SELECT sum(r.pending_delta) FROM loyalty_entry r
                                   WHERE r.source_id = e.id AND r.kind = 'reverse'), 0)
FROM loyalty_entry e
WHERE e.kind = 'earn' AND e.pending_delta > 0 AND e.activates_at <= %s
  AND NOT EXISTS (SELECT 1 FROM loyalty_entry a WHERE a.source_id = e.id AND a.kind = 'activate')
"""


def activation_entry(
    account: Account | Locked,
    *,
    now: dt.datetime,
    remaining: Decimal,
    expires_at,
    source_id=None,
    source: Row | None = None,
) -> Row:
    """The row that makes a lot's `remaining` points available, settling the account's debt
    first (the locked account's sums are advanced)."""
    settle = min(remaining, account.debt)
    account.debt -= settle
    account.pending -= remaining
    account.available += remaining - settle
    return Row(
        account_id=account.pk,
        kind=EntryKind.ACTIVATE,
        at=now,
        source_id=source_id,
        source=source,
        pending_delta=-remaining,
        available_delta=remaining - settle,
        debt_delta=-settle,
        expires_at=expires_at,
    )


def _activation_rows(
    now: dt.datetime, accounts: dict[int, Account] | dict[int, Locked]
) -> list[Row]:
    """Activation rows for the due earn lots of these locked accounts (updates their debt)."""
    by_id = {a.pk: a for a in accounts.values()}
    with connection.cursor() as cursor:
        cursor.execute(
            _DUE + " AND e.account_id = ANY(%s::bigint[]) ORDER BY e.id", [now, id_array(by_id)]
        )
        due = cursor.fetchall()
    return [
        activation_entry(
            by_id[account_id],
            now=now,
            remaining=remaining,
            expires_at=expires_at,
            source_id=entry_id,
        )
        for entry_id, account_id, expires_at, remaining in due
    ]


# One statement for a whole booking: the sums trigger then runs once. A row may name as its
# source another row of the same statement (`source_n`), which gets its id here. The rows go as
# one JSON document: psycopg spells an array parameter out element by element in Python, which
# cost three times as much for a batch's rows. The rows are a CTE `r` so that a caller may
# write more in the same statement (a bulk booking its receipts' points, see services.receipts).
ENTRY_ROWS = """
r AS MATERIALIZED (
  SELECT x.*, nextval(pg_get_serial_sequence('loyalty_entry', 'id')) AS id
  FROM json_to_recordset(%s::json) AS x(
    n int, account_id bigint, kind text, available_delta numeric, pending_delta numeric,
    debt_delta numeric, at timestamptz, receipt_id bigint, return_doc_id bigint,
    source_id bigint, source_n int, activates_at timestamptz, expires_at timestamptz,
    bonus_key text, reason text, actor_id bigint)
)"""
ENTRY_INSERT = """
INSERT INTO loyalty_entry (id, account_id, kind, available_delta, pending_delta, debt_delta, at,
  created_at, receipt_id, return_doc_id, source_id, activates_at, expires_at, bonus_key, reason,
  actor_id)
SELECT r.id, r.account_id, r.kind, r.available_delta, r.pending_delta, r.debt_delta, r.at, %s,
       r.receipt_id, r.return_doc_id, coalesce(r.source_id, s.id), r.activates_at, r.expires_at,
       coalesce(r.bonus_key, ''), coalesce(r.reason, ''), r.actor_id
FROM r LEFT JOIN r s ON s.n = r.source_n
ORDER BY r.n
"""
_INSERT_ENTRIES = "WITH" + ENTRY_ROWS + ENTRY_INSERT
_ENTRY_REFS = ("receipt_id", "return_doc_id", "source_id", "actor_id")


def entries_params(rows: list[Row]) -> list:
    """The parameters of `ENTRY_ROWS` and `ENTRY_INSERT` for these rows: one JSON document
    and the time they are written."""
    position = {id(row): n for n, row in enumerate(rows)}
    payload = []
    for n, row in enumerate(rows):
        item = {
            "n": n,
            "account_id": row.account_id,
            "kind": row.kind,
            "at": row.at.isoformat(),
            "available_delta": str(row.available_delta),
            "pending_delta": str(row.pending_delta),
            "debt_delta": str(row.debt_delta),
        }
        for name in _ENTRY_REFS:
            value = getattr(row, name)
            if value:
                item[name] = value
        if row.activates_at:
            item["activates_at"] = row.activates_at.isoformat()
        if row.expires_at:
            item["expires_at"] = row.expires_at.isoformat()
        if row.bonus_key or row.reason:
            item["bonus_key"], item["reason"] = row.bonus_key, row.reason
        if row.source is not None:
            item["source_n"] = position[id(row.source)]
        payload.append(item)
    return [json.dumps(payload), timezone.now()]


def entries_insert(rows: list[Row]) -> None:
    """Append these rows to the ledger in one INSERT (ids are not read back)."""
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_ENTRIES, entries_params(rows))


_DUE_CUSTOMERS = """
SELECT DISTINCT a.customer_id
FROM loyalty_entry e JOIN loyalty_account a ON a.id = e.account_id
WHERE e.kind = 'earn' AND e.pending_delta > 0 AND e.activates_at <= %s AND e.activates_at > %s
  AND NOT EXISTS (SELECT 1 FROM loyalty_entry x WHERE x.source_id = e.id AND x.kind = 'activate')
LIMIT %s
"""


@transaction.atomic
def points_activate_due(
    *, now: dt.datetime | None = None, since: dt.datetime | None = None, batch: int = 2000
) -> int:
    """Make earned points whose hold period has passed available; returns rows written.

    Only lots that came due after `since` (default: 35 days back) are looked for: booking a
    receipt activates at once whatever is already due, so older lots were handled then, and
    the nightly run never rereads the whole history.
    """
    now = now or timezone.now()
    since = since or now - dt.timedelta(days=35)
    written = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_DUE_CUSTOMERS, [now, since, batch])
            customers = [row[0] for row in cursor.fetchall()]
        if not customers:
            return written
        rows = _activation_rows(now, accounts_lock(customers))
        entries_insert(rows)
        written += len(rows)


def ledger_totals(account_id: int) -> dict[str, Decimal]:
    """The sums of an account's rows (what the account's columns must equal)."""
    totals = Entry.objects.filter(account_id=account_id).aggregate(
        available=Sum("available_delta"), pending=Sum("pending_delta"), debt=Sum("debt_delta")
    )
    return {k: v or ZERO for k, v in totals.items()}
