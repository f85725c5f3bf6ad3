"""Writes of the bonus programme: booking receipts and returns, activation, expiry, tiers,
bonuses and an admin's adjustments. Every change of a balance is an appended ledger row.

Serialisation: every write that reads a balance first locks the customer's account row
(`SELECT … FOR UPDATE`), so two tills spending the same points are decided one after the
other. The CHECK on the account (kept equal to the ledger's sums by a trigger) is the last
line: even a writer that forgot the lock cannot take a balance below zero.

Decisions where the brief is silent:
- A receipt earns at the tier the customer held when they came to the till (what the till's
  calculation showed); the tier is recomputed right after, from the receipt included.
- A points debt (a return taking back points already spent) is settled by the next
  activation, before any of it becomes available.
- Expiry counts every debit against the earliest-expiring credits (oldest first), which is
  exact for earned points and never takes more than is available.

Modules by topic: `ledger` (account locks, activation, the one-statement ledger insert),
`receipts`, `returns`, `expiry`, `tiers`, `adjustments` (bonuses and manual corrections).
"""

from .adjustments import (
    MAX_ADJUST,
    birthday_bonuses_grant,
    points_adjust,
    welcome_bonus_grant,
)
from .expiry import expiring_by, points_expire_due
from .ledger import accounts_lock, entries_insert, ledger_totals, points_activate_due
from .receipts import PointsRefused, receipt_points_book, receipts_points_book_bulk
from .returns import return_points_book
from .tiers import tiers_recompute

__all__ = [
    "MAX_ADJUST",
    "PointsRefused",
    "accounts_lock",
    "birthday_bonuses_grant",
    "entries_insert",
    "expiring_by",
    "ledger_totals",
    "points_activate_due",
    "points_adjust",
    "points_expire_due",
    "receipt_points_book",
    "receipts_points_book_bulk",
    "return_points_book",
    "tiers_recompute",
    "welcome_bonus_grant",
]
