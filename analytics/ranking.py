"""The full run's cut points, computed in numpy over the buyers' columns.

Exactly what the window functions `row_number`/`sum() OVER`/`ntile(5)` give in SQL, but on
arrays the run has already fetched for the CLV model, instead of four more sorts of the base
in PostgreSQL. Money is in integer kopecks and times in integer microseconds, so every
comparison is exact (a customer exactly at a boundary lands where the SQL would put them).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class Buyers:
    """One entry per customer with at least one receipt, ordered by customer id."""

    ids: np.ndarray  # int64
    receipts: np.ndarray  # int64
    revenue: np.ndarray  # int64 kopecks, net of returns
    revenue_window: np.ndarray  # int64 kopecks
    last_at: np.ndarray  # int64 microseconds since the epoch
    t_x: np.ndarray  # float days from first to last purchase
    age: np.ndarray  # float days from first purchase to the as-of time

    def model_arrays(self) -> tuple[np.ndarray, ...]:
        """(ids, x repeat purchases, t_x, T, average receipt) for the CLV models."""
        average = self.revenue / 100.0 / np.maximum(self.receipts, 1)
        return self.ids, (self.receipts - 1).astype(float), self.t_x, self.age, average


def ntile_starts(n: int, buckets: int = 5) -> list[int]:
    """Row index where each bucket after the first begins, as PostgreSQL's ntile() splits n
    rows: the first n mod buckets buckets get one row more; empty buckets do not begin."""
    size, extra = divmod(n, buckets)
    starts, at = [], 0
    for bucket in range(buckets):
        length = size + (1 if bucket < extra else 0)
        if bucket > 0 and length > 0:
            starts.append(at)
        at += length
    return starts


def vip_entry(
    ids: np.ndarray, revenue_window: np.ndarray, *, share: Decimal, cap: Decimal
) -> tuple[int, int, int] | None:
    """(VIP count, entry revenue in kopecks, entry customer id) or None.

    Customers ranked by window revenue (descending, then id) are VIP while the revenue of
    those ranked above them is under `share` of the total and their rank within `cap` of the
    active customers.
    """
    active = revenue_window > 0
    ids, revenue = ids[active], revenue_window[active]
    n = len(ids)
    if n == 0:
        return None
    order = np.lexsort((ids, -revenue))
    ranked, ranked_ids = revenue[order], ids[order]
    before = np.cumsum(ranked) - ranked
    total = int(ranked.sum())
    num, den = share.as_integer_ratio()
    if total * max(num, den, 1) < 2**62:
        head = before * den < num * total
    else:  # beyond int64: exact Python integers, slower but never wrong
        head = np.array([int(b) * den < num * total for b in before], dtype=bool)
    limit = math.floor(cap * n)
    head &= np.arange(1, n + 1) <= limit
    found = np.flatnonzero(head)
    if len(found) == 0:
        return None
    last = int(found[-1])
    return last + 1, int(ranked[last]), int(ranked_ids[last])


RFM_KEYS = {
    "r": ("last_at", "receipts", "revenue", "customer_id"),
    "f": ("receipts", "revenue", "last_at", "customer_id"),
    "m": ("revenue", "receipts", "last_at", "customer_id"),
}


def rfm_ranks(buyers: Buyers) -> tuple[dict[str, list[list]], dict[str, np.ndarray]]:
    """For R, F and M: the cut points and every buyer's score.

    The cut points are the key values of the first customer of quintiles 2..5, in JSON form:
    the scoring SQL of a one-customer refresh compares the customer's row of keys with them.
    The scores (1-5, aligned with `buyers.ids`) are the quintile each buyer's place in the
    order falls in, which is what that comparison gives, since the keys end with the unique id.
    """
    columns = {
        "last_at": buyers.last_at,
        "receipts": buyers.receipts,
        "revenue": buyers.revenue,
        "customer_id": buyers.ids,
    }
    n = len(buyers.ids)
    starts = ntile_starts(n)
    # The score at each place in the order: 1 before the first start, +1 at every start.
    by_place = 1 + np.searchsorted(np.asarray(starts, dtype=np.int64), np.arange(n), side="right")
    cuts, scores = {}, {}
    for kind, keys in RFM_KEYS.items():
        # lexsort sorts by the last key first.
        order = np.lexsort(tuple(columns[key] for key in reversed(keys)))
        cuts[kind] = [[_json(key, columns[key][order[start]]) for key in keys] for start in starts]
        scores[kind] = np.empty(n, dtype=np.int64)
        scores[kind][order] = by_place
    return cuts, scores


def rfm_cuts(buyers: Buyers) -> dict[str, list[list]]:
    """The cut points of `rfm_ranks` alone."""
    return rfm_ranks(buyers)[0]


def _json(key: str, value) -> str | int:
    if key == "last_at":
        return (EPOCH + dt.timedelta(microseconds=int(value))).isoformat()
    if key == "revenue":
        return str(Decimal(int(value)).scaleb(-2))
    return int(value)
