"""Points of merged cards: the absorbed cards' ledgers folded into the survivor's.

Customers merges cards and sends `customers_merged` inside its transaction, before the absorbed
cards' rows move (`loyalty.receivers` connects it). A card has one account, so an absorbed
card's account cannot simply move to a survivor that has its own, and the absorbed card's row
is deleted, its account and ledger with it. So the fold, in the merge's transaction:

- appends to the survivor's ledger a copy of every row of the absorbed accounts, in their
  order, with their dates, receipts, returns, hold and expiry dates (the activation and expiry
  runs and later returns treat them as the survivor's own), in one INSERT, so the statement
  trigger adds them to the survivor's sums at once: the survivor's balance (available, pending,
  debt) is the sum of all the merged cards' balances, and never below zero on the way;
- keeps each bonus key once: a bonus both cards had keeps its points, the survivor's key stays;
- repoints the absorbed accounts' receipt answers (`ReceiptPoints`) to the survivor's account,
  then removes the absorbed accounts with their rows. No ledger row is ever updated.

Undo rule: undoing a merge leaves the points with the survivor. The ledger is append-only, the
person may have spent the folded points since, and taking them back could take the survivor
below zero; the restored cards reopen with empty accounts (opened on their next receipt). The
sum of all balances is the same before and after the undo, and every account still equals the
sum of its rows. A receipt that goes back to a restored card keeps its points on the survivor;
a later return of it takes the points from the restored card (as a debt when it has none).
Tiers follow the receipts: they are recomputed for every card involved after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

from .models import Account, Entry, ReceiptPoints
from .services import accounts_lock, tiers_recompute

# What a copy keeps of its original; the account, the id, the source and the bonus key change.
_KEPT = (
    "kind",
    "available_delta",
    "pending_delta",
    "debt_delta",
    "at",
    "receipt_id",
    "return_doc_id",
    "activates_at",
    "expires_at",
    "reason",
    "actor_id",
)


def _entry_ids(count: int) -> list[int]:
    """Ids for the copies, drawn up front so that copies can point at each other (source)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('loyalty_entry', 'id')) "
            "FROM generate_series(1, %s)",
            [count],
        )
        return sorted(row[0] for row in cursor.fetchall())


@transaction.atomic
def accounts_fold(*, survivor_id: int, absorbed_ids: Iterable[int]) -> int:
    """Fold the absorbed cards' accounts into the survivor's; returns the ledger rows appended."""
    absorbed_ids = sorted(set(absorbed_ids) - {survivor_id})
    owners = list(
        Account.objects.filter(customer_id__in=absorbed_ids).values_list("customer_id", flat=True)
    )
    transaction.on_commit(lambda: tiers_recompute(customer_ids=[survivor_id]), robust=True)
    if not owners:
        return 0
    accounts = accounts_lock([survivor_id, *owners])
    target = accounts[survivor_id]
    folded = [accounts[owner].pk for owner in owners]
    rows = list(
        Entry.objects.filter(account_id__in=folded)
        .order_by("id")
        .values("id", "source_id", "bonus_key", *_KEPT)
    )
    keys = set(
        Entry.objects.filter(account=target)
        .exclude(bonus_key="")
        .values_list("bonus_key", flat=True)
    )
    new_ids = dict(zip((row["id"] for row in rows), _entry_ids(len(rows)), strict=True))
    copies = []
    for row in rows:
        key = row["bonus_key"]
        if key in keys:
            key = ""  # the survivor had this bonus too: its points come along, the key is taken
        elif key:
            keys.add(key)
        copies.append(
            Entry(
                id=new_ids[row["id"]],
                account_id=target.pk,
                source_id=new_ids.get(row["source_id"], row["source_id"]),
                bonus_key=key,
                **{name: row[name] for name in _KEPT},
            )
        )
    ReceiptPoints.objects.filter(account_id__in=folded).update(account=target)
    # The originals go first: a receipt's earn and redeem rows are unique, copies included.
    # One statement, so the delete trigger takes each account to zero at once.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM loyalty_entry WHERE account_id = ANY(%s)", [folded])
    Account.objects.filter(pk__in=folded).delete()
    Entry.objects.bulk_create(copies)
    return len(copies)


def accounts_after_undo(*, survivor_id: int, restored_ids: Iterable[int]) -> None:
    """After an undo the points stay where they are (see the module's rule); tiers follow the
    receipts that went back, once the undo commits."""
    ids = sorted({survivor_id, *restored_ids})
    transaction.on_commit(lambda: tiers_recompute(customer_ids=ids), robust=True)
