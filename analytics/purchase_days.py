"""Purchase days: the customer histories the CLV models learn from (Fader, Hardie & Lee, 2005).

The textbook definitions, as in the paper and in every reference implementation:

- A transaction is a purchase *day* in the store's time zone: two receipts of one customer on
  one local day are one transaction (a receipt's day is its local date in the time zone of the
  store that printed it).
- `x` is the number of repeat purchase days: purchase days after the first one.
- `t_x` is the number of days from the first purchase day to the last one; `T` the number of
  days from the first purchase day to the end of the calibration period (the as-of date in the
  chain's time zone, `settings.TIME_ZONE`). A purchase on the last calibration day gives t_x = T.
- The spend Gamma-Gamma models is the mean value of the repeat purchase days only: the first
  day is left out, and each day's value is the total of its receipts net of the returns of
  those receipts (whenever the return happened, as long as it happened by the as-of time).
  Gamma-Gamma is fitted on customers with x >= 1 (and a positive mean) only.

The backtest uses the same days cut at a calibration end `weeks` before the as-of date: the
calibration history is the days up to and including that date, and the holdout is the number
of purchase days after it (`PurchaseDays.backtest_arrays`).

`history_sql` builds each buyer's sorted purchase days and first-day value from the receipts;
the nightly run keeps them in `PurchaseDays` and rebuilds only the rows of the customers whose
history changed (as it does favourite categories, see `analytics.metrics.History`), because
grouping every receipt by customer and day costs about as much as the whole receipts scan.
`day_columns` derives the counts from those rows, which `analytics.metrics` fetches beside the
buyers' money in the same binary COPY. Days travel as whole days since 1970-01-01.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.conf import settings as django_settings

EPOCH_DATE = dt.date(1970, 1, 1)
# The first day's value is packed beside the day into one bigint, so that min() finds the first
# day and its value in one plain aggregate: day * 2^44 + (value + 2^43). Values are kopecks,
# within ±2^43 (88 billion roubles a day).
VALUE_BITS = 44
VALUE_OFFSET = 1 << 43


def day_number(day: dt.date) -> int:
    return (day - EPOCH_DATE).days


def store_time_zones() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT timezone FROM sales_store")
        return [row[0] for row in cursor.fetchall()]


def _local_day(alias: str, zones: list[str]) -> tuple[str, str]:
    """(SQL of a receipt's local day number, the join it needs) for receipts aliased `alias`.

    One time zone for every store (the usual chain) needs no join to the stores.
    """
    if len(zones) <= 1:
        return (
            f"(({alias}.purchased_at AT TIME ZONE %(day_tz)s)::date - date '1970-01-01')",
            "",
        )
    return (
        f"(({alias}.purchased_at AT TIME ZONE st.timezone)::date - date '1970-01-01')",
        f"JOIN sales_store st ON st.id = {alias}.store_id",
    )


def history_sql(scope: str, filters: str, zones: list[str]) -> str:
    """(customer_id, days, first_value) per buyer in scope: the sorted local day numbers with a
    purchase, and the first day's value net of the returns of its receipts (kopecks).

    `scope` is a join that limits the customers (to `am_dirty`-like tables) or ""; `filters`
    more conditions on the receipts `r` (one customer, the main currency's stores).
    """
    day, join = _local_day("r", zones)
    return f"""
        WITH per_day AS (
            -- total * 100 rather than total_minor (the same number): the covering index
            -- receipt_customer_totals holds total, so a few customers' receipts are read
            -- from the index alone (a chain with one time zone and one currency).
            SELECT r.customer_id, {day} AS day, bigint_sum((r.total * 100)::bigint) AS value
            FROM sales_receipt r {join} {scope}
            WHERE r.customer_id IS NOT NULL AND r.purchased_at <= %(now)s {filters}
            GROUP BY 1, 2
        ),
        refunds AS (
            SELECT r.customer_id, {day} AS day, bigint_sum((rl.amount * 100)::bigint) AS refund
            FROM sales_returnline rl
            JOIN sales_return d ON d.id = rl.return_doc_id
            JOIN sales_receipt r ON r.id = d.receipt_id {join} {scope}
            WHERE r.customer_id IS NOT NULL AND d.returned_at <= %(now)s
                  AND r.purchased_at <= %(now)s {filters}
            GROUP BY 1, 2
        ),
        per_customer AS (
            SELECT customer_id, array_agg(day ORDER BY day) AS days,
                   min(day::bigint * {1 << VALUE_BITS} + value + {VALUE_OFFSET}) AS first_key
            FROM per_day GROUP BY customer_id
        )
        SELECT c.customer_id, c.days,
               (c.first_key & {(1 << VALUE_BITS) - 1}) - {VALUE_OFFSET}
                   - coalesce(rf.refund, 0) AS first_value
        FROM per_customer c
        LEFT JOIN refunds rf
               ON rf.customer_id = c.customer_id AND rf.day = (c.first_key >> {VALUE_BITS})
    """  # noqa: S608 - only fixed SQL fragments are formatted in


def day_columns(days: str, first_value: str) -> str:
    """The counts `PurchaseDays` keeps of a buyer's sorted `days` array: purchase days in all
    and up to the calibration end, the first and last day, and the first day's net value."""
    days = f"({days})"  # subscripts need an expression in parentheses
    return f"""
               cardinality({days})::int8,
               {days}[1]::int8,
               {days}[cardinality({days})]::int8,
               -- The days are sorted: width_bucket counts those up to the calibration end
               -- by binary search, far cheaper than a subquery over unnest() (bench/README.md).
               width_bucket(%(cal_end)s, {days})::int8,
               coalesce({days}[width_bucket(%(cal_end)s, {days})], -1)::int8,
               {first_value}::int8
    """


@dataclass
class PurchaseDays:
    """One entry per buyer (ordered by customer id), days as whole days since 1970-01-01."""

    ids: np.ndarray
    days: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    days_cal: np.ndarray
    last_day_cal: np.ndarray
    first_value: np.ndarray  # the first day's value net of its returns, kopecks
    revenue: np.ndarray  # every day's value net of returns, kopecks
    margin: np.ndarray  # net margin, kopecks
    margin_window: np.ndarray  # net margin in the trailing window, kopecks
    as_of_day: int
    cal_end: int

    def model_arrays(self) -> tuple[np.ndarray, ...]:
        """(ids, x, t_x, T, m): repeat days, days to the last and to the as-of day, and the mean
        net value of the repeat days in roubles (0 where there is none)."""
        x = (self.days - 1).astype(float)
        t_x = (self.last_day - self.first_day).astype(float)
        T = (self.as_of_day - self.first_day).astype(float)
        repeat_value = (self.revenue - self.first_value) / 100.0
        m = np.where(x > 0, repeat_value / np.maximum(x, 1), 0.0)
        return self.ids, x, t_x, T, m

    def backtest_arrays(self) -> tuple[np.ndarray, ...]:
        """(x, t_x, T, holdout days) of the buyers whose first day is on or before the
        calibration end, as their history looked on that day."""
        known = self.first_day <= self.cal_end
        first = self.first_day[known]
        x = (self.days_cal[known] - 1).astype(float)
        t_x = (self.last_day_cal[known] - first).astype(float)
        T = (self.cal_end - first).astype(float)
        holdout = (self.days[known] - self.days_cal[known]).astype(float)
        return x, t_x, T, holdout


# The columns of `day_columns`, and the buyer's net margin (in all and in the window).
DAY_COLUMNS = [
    ("days", "int8"),
    ("first_day", "int8"),
    ("last_day", "int8"),
    ("days_cal", "int8"),
    ("last_day_cal", "int8"),
    ("first_value", "int8"),
]
MONEY_COLUMNS = [("margin", "int8"), ("margin_window", "int8")]


def zone_params(zones: list[str]) -> dict:
    return {"day_tz": zones[0] if zones else django_settings.TIME_ZONE}
