"""What every stage of the metrics pipeline shares: the run's parameters, the session's settings
and locks, the temporary tables' names and the small SQL helpers.

The stages talk through temporary tables of the database session. Their names are fixed (the
SQL spells them out), and a stage that reads another's tables takes the record that stage
returned (`BaseTables`, `PredictionTable`), so the order of the pipeline and what each stage
reads and writes show in the signatures.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from .. import purchase_days
from ..models import AnalyticsSettings

log = logging.getLogger(__name__)

# Advisory lock keys: one for "a full run is in progress", one guarding the metrics table, and
# a range for single customers (the key space is 64-bit, ids stay far below 2**40).
FULL_RUN_KEY = 0x434C_0001
TABLE_KEY = 0x434C_0002
CUSTOMER_KEY_BASE = 0x434C << 40


def session_settings() -> list[str]:
    """Settings of the full run's session, undone by SESSION_RESET.

    Whole-base aggregates want their hash tables in memory, and JIT compiling each of a dozen
    statements costs more than it saves at this size. Random reads cost little more than
    sequential ones on the SSDs PostgreSQL runs on today; the default (4) sends the dirty
    customers' lookups to whole-table scans. The statistics a run gathers (of its temporary
    tables and of the rebuilt metrics table) steer joins and filters over a few hundred
    thousand rows with a handful of distinct classes and segments: a sample of 9,000 rows
    (target 30) serves them as well as the default 30,000 and takes a third of the time.
    Parallel workers: see CLIENTELE_METRICS_PARALLEL_WORKERS. The rebuilt metrics table's
    three indexes are built with two parallel workers where 64 MB of maintenance memory allows
    one (32 MB per process at least): 0.55 s against 0.62 s for the three (bench/README.md).
    """
    workers = max(0, int(django_settings.CLIENTELE_METRICS_PARALLEL_WORKERS))
    return [
        "SET work_mem = '512MB'",
        "SET maintenance_work_mem = '256MB'",
        "SET jit = off",
        "SET random_page_cost = 1.1",
        "SET default_statistics_target = 30",
        f"SET max_parallel_workers_per_gather = {workers}",
    ]


SESSION_RESET = (
    "RESET work_mem; RESET maintenance_work_mem; RESET jit; RESET random_page_cost; "
    "RESET default_statistics_target; RESET max_parallel_workers_per_gather"
)
TEMP_TABLES = (
    "am_rf",
    "am_rc",
    "am_pd",
    "am_dirty",
    "am_dr",
    "am_fav",
    "am_clv",
    "am_hol",
    "am_holr",
)
# Receipts written by transactions that were still open when the previous run began.


# Purchase days of the base (kept between runs) and of one customer (`base.build_purchase_days`).
STORED_DAYS, ONE_CUSTOMER_DAYS = "analytics_purchasedays", "am_pd"


@dataclass(frozen=True)
class BaseTables:
    """The temporary tables `base.build_base` leaves in the session for the later stages.

    `receipts` (am_rc) holds the per-customer aggregates of receipts and refunds, money in
    kopecks; `dirty` (am_dirty) the customers whose history-only aggregates are recomputed;
    `purchase_days` the buyers' purchase days (analytics.purchase_days): the stored table
    `PurchaseDays` for the base, `am_pd` in a one-customer refresh;
    `dirty_receipts` (am_dr) the dirty customers' receipts and `favourites` (am_fav) their
    favourite categories. `base.base_sql` joins them into one row per customer.
    """

    receipts: str = "am_rc"
    dirty: str = "am_dirty"
    purchase_days: str = STORED_DAYS
    dirty_receipts: str = "am_dr"
    favourites: str = "am_fav"


@dataclass(frozen=True)
class PredictionTable:
    """`am_clv`, which `predictions.write_predictions` fills: one row per buyer with P(alive),
    expected purchases, CLV, its basis and (in the full run) the RFM scores."""

    table: str = "am_clv"


def _noop(step: str, percent: int) -> None:
    return None


class RecomputeBusy(Exception):
    """Another full recompute holds the lock; this one did nothing."""


@dataclass
class Params:
    as_of: dt.datetime
    window_start: dt.datetime
    quarter_start: dt.datetime
    new_start: dt.datetime
    settings: AnalyticsSettings
    # The as-of date in the chain's time zone and the backtest's calibration end, as day
    # numbers since 1970-01-01 (analytics.purchase_days).
    as_of_day: int = 0
    cal_end: int = 0

    @classmethod
    def build(cls, as_of: dt.datetime | None) -> Params:
        conf = AnalyticsSettings.load()
        now = as_of or timezone.now()
        as_of_day = purchase_days.day_number(timezone.localtime(now).date())
        return cls(
            as_of=now,
            window_start=now - dt.timedelta(days=conf.window_days),
            quarter_start=now - dt.timedelta(days=90),
            new_start=now - dt.timedelta(days=conf.b_new_customer_days),
            settings=conf,
            as_of_day=as_of_day,
            cal_end=as_of_day - 7 * conf.clv_backtest_weeks,
        )

    def sql(self) -> dict:
        conf = self.settings
        return {
            "now": self.as_of,
            "ws": self.window_start,
            "qs": self.quarter_start,
            "new_start": self.new_start,
            "window_days": conf.window_days,
            "b_ratio": conf.b_growth_ratio,
            "b_days": conf.b_second_purchase_days,
            "d_alive": conf.d_p_alive_threshold,
            "cal_end": self.cal_end,
        }


def _execute(sql: str, params: dict | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})


def _fetchall(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def drop_temp_tables() -> None:
    _execute("DROP TABLE IF EXISTS " + ", ".join(TEMP_TABLES))


def _filter(column: str, customer_id: int | None) -> str:
    return f"AND {column} = %(cid)s" if customer_id is not None else ""
