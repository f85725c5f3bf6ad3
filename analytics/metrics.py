"""The metrics pipeline: set-based SQL over receipts, one code path for the base and one customer.

A run builds temporary tables: `am_rc` (receipts per customer: counts, dates, and money from the
receipts' own totals and margins, which triggers keep equal to their lines), `am_ret` (returns
per customer), `am_dirty` (customers whose history changed, see `History`), `am_dr` and
`am_fav` (their receipts and favourite categories, the only step that reads receipt lines;
`write_favourites` stores them in a table of their own) and `am_clv` (model predictions and
the full run's RFM scores, COPYed in binary from numpy); the final write joins them into one
row per customer (`base_sql`). The full run fetches the buyers' columns once (`fetch_buyers`,
binary COPY) for the CLV fit and for the cut points (VIP entry level, RFM quintile boundaries,
`analytics.ranking`), stores the cut points in `ClassThresholds`, scores every buyer from the
same order (`am_clv`) and writes every metric in one statement. A one-customer refresh after a
receipt compares the customer's keys with the stored cut points instead, which ranks exactly
like the full run did (a test holds the two equal for every customer).

RFM quintiles: customers are ranked by row_number with a deterministic tiebreak and cut with
`ntile(5)`, which gives five equal groups even when thousands share one purchase count. Ties
are broken by the other two measures and then by id (frequency: receipts, revenue, last
purchase, id), so among one-receipt customers the bigger spenders score higher. `cume_dist`
was rejected because heavy ties would collapse the low quintiles into one.

Nightly versus from scratch: every run recomputes every customer's metrics from the receipts
(windows slide, recency ages, the model is refitted). Favourite categories and holiday affinity
depend only on a customer's own history, so a nightly run recomputes them from the lines for
the customers whose history changed and keeps the rest (see `History`; a test shows the result
equals a run from scratch). The first run, `from_scratch=True`, and changed holiday settings
or category names recompute them for everyone.

Concurrency: a full run holds a session advisory lock (a second full run is skipped, not
queued) and writes under an exclusive transaction lock; a one-customer refresh takes the shared
lock plus a per-customer one. The final write never replaces a row computed after the full
run's snapshot started, so a receipt refreshed mid-run is not undone by older aggregates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import holidays as holidays_lib
import numpy as np
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from crm.pg import binary as pgbinary
from crm.pg import rebuild as pgswap

from . import backtest, clv, purchase_days, ranking
from .models import AnalyticsSettings, ClassThresholds, ClvModelFit

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
    Parallel workers: see CLIENTELE_METRICS_PARALLEL_WORKERS.
    """
    workers = max(0, int(django_settings.CLIENTELE_METRICS_PARALLEL_WORKERS))
    return [
        "SET work_mem = '512MB'",
        "SET jit = off",
        "SET random_page_cost = 1.1",
        "SET default_statistics_target = 30",
        f"SET max_parallel_workers_per_gather = {workers}",
    ]


SESSION_RESET = (
    "RESET work_mem; RESET jit; RESET random_page_cost; RESET default_statistics_target; "
    "RESET max_parallel_workers_per_gather"
)
TEMP_TABLES = (
    "am_rc",
    "am_ret",
    "am_days",
    "am_pd",
    "am_dirty",
    "am_dr",
    "am_fav",
    "am_clv",
    "am_hol",
)
# Receipts written by transactions that were still open when the previous run began.
HISTORY_OVERLAP = dt.timedelta(hours=1)
SQL_TYPES = {
    "last_at": "timestamptz",
    "receipts": "bigint",
    "revenue": "bigint",
    "customer_id": "bigint",
}


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


@dataclass
class History:
    """What a nightly run may reuse of the previous full run's history-only aggregates.

    Favourite categories, holiday affinity and purchase days (`PurchaseDays`) depend on nothing
    but a customer's own receipts,
    returns and lines (plus the holiday settings and category names, which the signature
    covers). A customer is *dirty*, and gets them recomputed from the lines, when a receipt or
    return of theirs arrived since the previous run began (less an hour's overlap for
    transactions still open then), when a purchase became visible (purchased after the
    previous run's as-of time), or when a receipt of theirs lies in the run-up to a holiday
    that has passed since. Every other customer keeps the previous values, which a run from
    scratch would compute identically (a test compares the two on changed data).
    """

    received_since: dt.datetime
    visible_after: dt.datetime
    closed_windows: list[tuple[dt.datetime, dt.datetime]]


def history_signature(params: Params) -> str:
    """Everything besides the receipts that favourites, holiday affinity and purchase days
    depend on (purchase days: the stores' time zones and currencies)."""
    conf = params.settings
    year = timezone.localtime(params.as_of).year
    categories = _fetchall(
        "SELECT coalesce(md5(string_agg(id || ':' || name, ',' ORDER BY id)), '') "
        "FROM sales_category"
    )[0][0]
    stores = _fetchall(
        "SELECT coalesce(md5(string_agg(id || ':' || timezone || ':' || currency, ',' "
        "ORDER BY id)), '') FROM sales_store"
    )[0][0]
    parts = [
        ",".join(sorted(holiday_keys(conf, year))),
        str(year),
        str(conf.holiday_lookback_days),
        str(conf.holiday_min_years),
        django_settings.TIME_ZONE,
        categories,
        stores,
        django_settings.CLIENTELE_DEFAULT_CURRENCY,
        # The version of the stored purchase days: a new one rebuilds them for everyone.
        "purchase-days-1",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def plan_history(params: Params, previous: ClassThresholds | None, signature: str):
    """The `History` a nightly run may use, or None when everything must be recomputed."""
    if (
        previous is None
        or previous.history_started_at is None
        or previous.history_as_of is None
        or previous.history_signature != signature
        or previous.history_as_of > params.as_of
    ):
        return None
    conf = params.settings
    since = timezone.localtime(previous.history_as_of).date()
    today = timezone.localtime(params.as_of).date()
    tz = timezone.get_current_timezone()
    windows = []
    for key in holiday_keys(conf, today.year):
        for year in range(since.year, today.year + 1):
            try:
                day = dt.date(year, int(key[:2]), int(key[3:]))
            except ValueError:
                continue  # 29 February of a common year
            if since < day <= today:
                ends = dt.datetime.combine(day, dt.time(), tz)
                windows.append((ends - dt.timedelta(days=conf.holiday_lookback_days), ends))
    return History(
        received_since=previous.history_started_at - HISTORY_OVERLAP,
        visible_after=previous.history_as_of,
        closed_windows=windows,
    )


def foreign_store_ids() -> list[int]:
    """Stores that sell in another currency than the chain's main one."""
    rows = _fetchall(
        "SELECT id FROM sales_store WHERE currency <> %(main)s ORDER BY id",
        {"main": django_settings.CLIENTELE_DEFAULT_CURRENCY},
    )
    return [row[0] for row in rows]


def build_base(
    params: Params, customer_id: int | None, progress: Callable, history: History | None = None
) -> None:
    """Aggregate receipts and returns per customer (`am_rc`, `am_ret`), find the dirty
    customers, their receipts (`am_dr`) and favourite categories (`am_fav`, which
    `write_favourites` stores); `base_sql` joins the aggregates into a row per customer.

    Money comes from the receipts' own totals and margins (kept equal to their lines' sums at
    ingest), so the run reads the lines only for the dirty customers' favourite categories.
    Money inside the pipeline is summed as integer kopecks (the receipts store theirs,
    `total_minor` and `margin_minor`) with `bigint_sum`, exact, and with a plain bigint state
    far cheaper over millions of rows than the numeric or 128-bit states of the built-in sums
    (migration analytics/0008). Money stays in kopecks up to the final write.
    """
    p = {**params.sql(), "cid": customer_id}
    if history is None:
        dirty_receipt = dirty_return = "TRUE"
    else:
        p.update(
            since=history.received_since,
            visible_after=history.visible_after,
            starts=[starts for starts, _ends in history.closed_windows],
            ends=[ends for _starts, ends in history.closed_windows],
        )
        closed = (
            "(SELECT range_agg(tstzrange(s, e)) "
            "FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS w(s, e))"
        )
        dirty_receipt = (
            f"coalesce(bool_or(created_at >= %(since)s OR purchased_at > %(visible_after)s "
            f"OR purchased_at <@ {closed}), FALSE)"
        )
        dirty_return = (
            "bool_or(d.created_at >= %(since)s OR d.returned_at > %(visible_after)s "
            "OR r.purchased_at > %(visible_after)s)"
        )
    # Customer figures are in the chain's main currency: receipts of stores that sell in
    # another one are left out (nothing here converts currencies, and nothing adds them up).
    p["foreign_stores"] = foreign_store_ids()
    mine = "AND store_id <> ALL(%(foreign_stores)s)" if p["foreign_stores"] else ""
    mine_r = mine.replace("store_id", "r.store_id")
    drop_temp_tables()
    progress("receipts", 10)
    _execute(
        f"""
        CREATE TEMP TABLE am_rc AS
        SELECT customer_id,
               min(purchased_at) AS first_at,
               max(purchased_at) AS last_at,
               count(*) AS receipts,
               count(*) FILTER (WHERE purchased_at >= %(ws)s) AS receipts_w,
               bigint_sum(total_minor) AS gross,
               bigint_sum(margin_minor) AS gross_margin,
               coalesce(bigint_sum(total_minor) FILTER (WHERE purchased_at >= %(ws)s), 0)
                   AS gross_w,
               coalesce(bigint_sum(margin_minor) FILTER (WHERE purchased_at >= %(ws)s), 0)
                   AS gross_margin_w,
               coalesce(bigint_sum(total_minor) FILTER (WHERE purchased_at >= %(qs)s), 0)
                   AS gross_90,
               {dirty_receipt} AS dirty
        FROM sales_receipt
        WHERE customer_id IS NOT NULL AND purchased_at <= %(now)s
              {_filter("customer_id", customer_id)} {mine}
        GROUP BY customer_id
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )
    progress("returns", 25)
    # Returns count when they happen: their refund comes off the window in which it was made.
    _execute(
        f"""
        CREATE TEMP TABLE am_ret AS
        SELECT r.customer_id,
               bigint_sum((rl.amount * 100)::bigint) AS refund,
               bigint_sum((rl.margin * 100)::bigint) AS refund_margin,
               coalesce(bigint_sum((rl.amount * 100)::bigint)
                            FILTER (WHERE d.returned_at >= %(ws)s), 0) AS refund_w,
               coalesce(bigint_sum((rl.margin * 100)::bigint)
                            FILTER (WHERE d.returned_at >= %(ws)s), 0) AS refund_margin_w,
               coalesce(bigint_sum((rl.amount * 100)::bigint)
                            FILTER (WHERE d.returned_at >= %(qs)s), 0) AS refund_90,
               {dirty_return} AS dirty
        FROM sales_returnline rl
        JOIN sales_return d ON d.id = rl.return_doc_id
        JOIN sales_receipt r ON r.id = d.receipt_id
        WHERE r.customer_id IS NOT NULL AND d.returned_at <= %(now)s
              AND r.purchased_at <= %(now)s {_filter("r.customer_id", customer_id)} {mine_r}
        GROUP BY r.customer_id
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )
    _execute(
        """
        CREATE TEMP TABLE am_dirty AS
        SELECT customer_id FROM am_rc WHERE dirty
        UNION SELECT customer_id FROM am_ret WHERE dirty
        """
    )
    _execute("ALTER TABLE am_dirty ADD PRIMARY KEY (customer_id)")
    _execute("ANALYZE am_rc, am_dirty")
    progress("purchase days", 30)
    build_purchase_days(p, customer_id, history is None, mine_r)
    progress("favourite categories", 35)
    # The dirty customers' receipts, read once (from the covering index alone) for their
    # favourites and their holiday affinity.
    _execute(
        """
        CREATE TEMP TABLE am_dr AS
        SELECT r.id, r.customer_id, r.purchased_at, r.total
        FROM am_dirty x JOIN sales_receipt r ON r.customer_id = x.customer_id
        """
    )
    _execute("ANALYZE am_dr")
    # Every dirty customer gets a row, '[]' when they have no favourite now.
    _execute(
        """
        CREATE TEMP TABLE am_fav AS
        SELECT x.customer_id, coalesce(fav.categories, '[]'::jsonb) AS categories
        FROM am_dirty x LEFT JOIN (
        SELECT top.customer_id,
               jsonb_agg(jsonb_build_object('id', top.category_id, 'name', cat.name)
                         ORDER BY top.rank) AS categories
        FROM (
            SELECT customer_id, category_id,
                   row_number() OVER (PARTITION BY customer_id
                                      ORDER BY amount DESC, category_id) AS rank
            FROM (
                SELECT customer_id, category_id, bigint_sum(amount) AS amount FROM (
                    SELECT r.customer_id, p.category_id, (l.amount * 100)::bigint AS amount
                    FROM am_dr r
                    JOIN sales_receiptline l ON l.receipt_id = r.id
                    JOIN sales_product p ON p.id = l.product_id
                    WHERE r.purchased_at <= %(now)s
                    UNION ALL
                    SELECT r.customer_id, p.category_id, -(rl.amount * 100)::bigint
                    FROM am_dr r
                    JOIN sales_return d ON d.receipt_id = r.id
                    JOIN sales_returnline rl ON rl.return_doc_id = d.id
                    JOIN sales_receiptline l ON l.id = rl.receipt_line_id
                    JOIN sales_product p ON p.id = l.product_id
                    WHERE r.purchased_at <= %(now)s AND d.returned_at <= %(now)s
                ) moves
                GROUP BY customer_id, category_id
            ) totals
            WHERE category_id IS NOT NULL AND amount > 0
        ) top
        JOIN sales_category cat ON cat.id = top.category_id
        WHERE top.rank <= 3
        GROUP BY top.customer_id
        ) fav ON fav.customer_id = x.customer_id
        """,
        p,
    )
    # Its size varies from a handful of rows to the whole base: without statistics the
    # planner hashes the 200,000-row side of its join in `base_sql` instead of it.
    _execute("ANALYZE am_ret")


def build_purchase_days(p: dict, customer_id: int | None, everyone: bool, mine: str) -> None:
    """`am_days` (analytics.purchase_days) for one customer, from their receipts; or for the
    base, from `PurchaseDays`, after rebuilding its rows for everyone (`everyone`) or for the
    dirty customers. A buyer without a row (rows lost by hand) is caught by `recompute_all`,
    which then rebuilds them all; a new install has no previous run, so starts with everyone."""
    zones = purchase_days.store_time_zones()
    p.update(purchase_days.zone_params(zones))
    if customer_id is not None:
        source = purchase_days.history_sql("", f"AND r.customer_id = %(cid)s {mine}", zones)
        _execute(f"CREATE TEMP TABLE am_pd AS {source}", p)
        _execute(purchase_days.days_sql("am_pd p"), p)
        return
    table = "analytics_purchasedays"
    columns = "(customer_id, days, first_value)"
    if everyone:
        _execute(f"TRUNCATE {table}")
        _execute(f"INSERT INTO {table} {columns} {purchase_days.history_sql('', mine, zones)}", p)
    else:
        _execute(
            f"DELETE FROM {table} WHERE customer_id IN (SELECT customer_id FROM am_dirty)"  # noqa: S608 - a fixed table name
        )
        scope = "JOIN am_dirty x ON x.customer_id = r.customer_id"
        _execute(
            f"INSERT INTO {table} {columns} {purchase_days.history_sql(scope, mine, zones)}", p
        )
    # Every row: `fetch_days` keeps today's buyers (a row whose receipts left is not read).
    _execute(purchase_days.days_sql(f"{table} p"), p)


# Net money per buyer, in kopecks, from `am_rc` (rc) and `am_ret` (rt): the base rows and the
# buyers' arrays both use these, so the model, the cut points and the metrics agree.
NET_SQL = {
    name: f"coalesce(rc.{gross}, 0) - coalesce(rt.{refund}, 0)"
    for name, gross, refund in (
        ("revenue", "gross", "refund"),
        ("revenue_w", "gross_w", "refund_w"),
        ("revenue_90", "gross_90", "refund_90"),
        ("margin", "gross_margin", "refund_margin"),
        ("margin_w", "gross_margin_w", "refund_margin_w"),
    )
}


def base_sql(customer_id: int | None) -> str:
    """One row per customer from the aggregates of `build_base`, money in kopecks.

    A subquery of the final write rather than a table of its own: materialising 200,000 wide
    rows only to read them once cost more than any join in it.
    """
    net = ", ".join(f"{expression} AS {name}" for name, expression in NET_SQL.items())
    return f"""
        SELECT c.id AS customer_id,
               rc.first_at, rc.last_at,
               coalesce(rc.receipts, 0) AS receipts,
               coalesce(rc.receipts_w, 0) AS receipts_w,
               {net},
               coalesce(ct.n, 0) AS contacts_w,
               coalesce((ch.acquisition_cost * 100)::bigint, 0) AS acquisition_cost,
               CASE WHEN rc.receipts >= 2 THEN coalesce(sp.second_at, rc.first_at) END
                   AS second_at
        FROM customers_customer c
        LEFT JOIN am_rc rc ON rc.customer_id = c.id
        LEFT JOIN am_ret rt ON rt.customer_id = c.id
        LEFT JOIN (
            SELECT customer_id, count(*) AS n FROM customers_contact
            WHERE at >= %(ws)s AND at <= %(now)s {_filter("customer_id", customer_id)}
            GROUP BY customer_id
        ) ct ON ct.customer_id = c.id
        LEFT JOIN (
            SELECT r.customer_id, min(r.purchased_at) AS second_at
            FROM sales_receipt r JOIN am_rc f ON f.customer_id = r.customer_id
            WHERE f.first_at >= %(new_start)s AND f.receipts >= 2
                  AND r.purchased_at > f.first_at AND r.purchased_at <= %(now)s
            GROUP BY r.customer_id
        ) sp ON sp.customer_id = c.id
        LEFT JOIN customers_acquisitionchannel ch ON ch.id = c.acquisition_channel_id
        WHERE TRUE {_filter("c.id", customer_id)}
    """  # noqa: S608 - only fixed SQL fragments are formatted in


BUYER_COLUMNS = [
    ("ids", "int8"),
    ("receipts", "int8"),
    ("revenue", "int8"),
    ("revenue_window", "int8"),
    ("first_at", "int8"),
    ("last_at", "int8"),
]
DAY_US = 86_400_000_000


def fetch_buyers(params: Params) -> ranking.Buyers:
    """Every buyer in `am_rc` as numpy columns (kopecks, microseconds), in one COPY.

    Times travel as microseconds since the epoch: `date_part` is a double, exact to well under
    half a microsecond at today's epoch values, so rounding recovers the stored integer (the
    numeric `extract` costs several times more per row).
    """
    columns = pgbinary.copy_out(
        f"""
        SELECT rc.customer_id, rc.receipts::int8, {NET_SQL["revenue"]}, {NET_SQL["revenue_w"]},
               round(date_part('epoch', rc.first_at) * 1000000)::int8,
               round(date_part('epoch', rc.last_at) * 1000000)::int8
        FROM am_rc rc LEFT JOIN am_ret rt ON rt.customer_id = rc.customer_id
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        {},
        BUYER_COLUMNS,
    )
    order = np.argsort(columns["ids"], kind="stable")  # a fixed order for the fit's sample
    columns = {name: values[order] for name, values in columns.items()}
    now_us = (params.as_of - ranking.EPOCH) // dt.timedelta(microseconds=1)
    first = columns.pop("first_at")
    return ranking.Buyers(
        **columns,
        t_x=((columns["last_at"] - first) // DAY_US).astype(float),
        age=((now_us - first) // DAY_US).astype(float),
    )


def fetch_days(params: Params) -> purchase_days.PurchaseDays:
    """Every buyer's purchase days (`am_days`) with their net money, for the models."""
    return purchase_days.fetch(NET_SQL, as_of_day=params.as_of_day, cal_end=params.cal_end)


def fit_models(
    days: purchase_days.PurchaseDays,
    previous: ClvModelFit | None = None,
    settings: AnalyticsSettings | None = None,
    progress: Callable = _noop,
) -> ClvModelFit:
    """Fit BG/NBD and Gamma-Gamma on the buyers' purchase days, backtest BG/NBD on the
    history as it stood `clv_backtest_weeks` ago, and keep the fit with the verdict of the
    sanity gate (analytics.backtest), degenerate or not.

    The previous fit, when usable, is the optimiser's starting point: from one night to the
    next the parameters barely move (clv.fit falls back to a cold start when that is worse).
    """
    conf = settings or AnalyticsSettings.load()
    _ids, x, t_x, T, m = days.model_arrays()
    start_bg = start_gg = None
    if previous is not None and previous.usable_bgnbd:
        start_bg = clv.BgNbdParams(previous.r, previous.alpha, previous.a, previous.b)
    if previous is not None and previous.usable_gamma_gamma:
        start_gg = clv.GammaGammaParams(previous.p, previous.q, previous.gamma)
    result = clv.fit(x, t_x, T, m, start_bg=start_bg, start_gg=start_gg)
    bg, gg = result.bgnbd, result.gamma_gamma
    progress("backtest", 70)
    started = time.perf_counter()
    bx, bt_x, bT, holdout = days.backtest_arrays()
    checked = backtest.run_backtest(bx, bt_x, bT, holdout, weeks=conf.clv_backtest_weeks, start=bg)
    checked["calibration_end"] = (
        purchase_days.EPOCH_DATE + dt.timedelta(days=days.cal_end)
    ).isoformat()
    checked["seconds"] = time.perf_counter() - started
    repeat = (x > 0) & (m > 0)
    reasons = backtest.gate(
        result,
        checked,
        mean_spend=float(m[repeat].mean()) if repeat.any() else 0.0,
        min_repeat_buyers=conf.clv_min_repeat_buyers,
        max_error=float(conf.clv_max_backtest_error),
    )
    return ClvModelFit.objects.create(
        published=not reasons,
        gate_notes=[reason.as_json() for reason in reasons],
        backtest=checked,
        fitted_at=timezone.now(),
        customers=result.customers,
        repeat_customers=result.repeat_customers,
        sampled=result.sampled,
        r=bg.r if bg else None,
        alpha=bg.alpha if bg else None,
        a=bg.a if bg else None,
        b=bg.b if bg else None,
        bgnbd_log_likelihood=result.bgnbd_log_likelihood,
        p=gg.p if gg else None,
        q=gg.q if gg else None,
        gamma=gg.gamma if gg else None,
        gamma_gamma_log_likelihood=result.gamma_gamma_log_likelihood,
        seconds=result.seconds,
        message=result.message,
        notes=result.notes,
    )


def write_predictions(
    params: Params,
    fit: ClvModelFit | None,
    days: purchase_days.PurchaseDays | None = None,
    scores: dict[str, np.ndarray] | None = None,
) -> None:
    """COPY the buyers' P(alive), 90-day purchases and CLV into `am_clv`, and in the full run
    their RFM scores (`ranking.rfm_ranks`), one row per buyer.

    Columns a run leaves out are NULL: the predictions when the model is unusable, the
    scores in a refresh, which compares the customer's keys with the stored cut points (the
    numpy scores equal that comparison, and a test holds the two equal, without a dozen row
    comparisons per customer in the final statement). The money figures travel as whole
    kopecks: PostgreSQL turns a double into numeric by printing and parsing it, a dozen times
    the cost of scaling an integer in the final write.

    Predicted CLV is discounted *margin*, so that it compares with the historical LCV: the
    expected revenue times the customer's own margin share. A fit that failed its sanity gate
    (or no fit) gives the fallback instead (`backtest.fallback_clv`, basis 2), and no P(alive),
    expected purchases or 12-month value, so nothing downstream (class A, class D by P(alive))
    is driven by a model that failed.
    """
    _execute(
        "CREATE TEMP TABLE am_clv (customer_id bigint, p_alive float8, exp90 float8, "
        "clv int8, v12 int8, basis int8, r int8, f int8, m int8)"
    )
    days = days if days is not None else fetch_days(params)
    if len(days.ids) == 0:
        return
    ids, x, t_x, T, m = days.model_arrays()
    conf = params.settings
    columns, values = [("customer_id", "int8")], [ids]
    publish = fit is not None and fit.published and fit.usable_bgnbd and fit.usable_gamma_gamma
    if publish:
        bg = clv.BgNbdParams(fit.r, fit.alpha, fit.a, fit.b)
        gg = clv.GammaGammaParams(fit.p, fit.q, fit.gamma)
        # Without repeat days a customer has no repeat spend of their own: the population's.
        spend = clv.conditional_expected_spend(gg, x, m)
        predictor = clv.BgNbdPredictor(bg, x, t_x, T)
        revenue = predictor.clv(
            spend,
            months=conf.clv_horizon_months,
            annual_discount_rate=float(conf.annual_discount_rate),
        )
        value = revenue * backtest.margin_share(days.revenue, days.margin)
        v12 = spend * predictor.expected_purchases(365.0)
        columns += [
            ("p_alive", "float8"),
            ("exp90", "float8"),
            ("clv", "int8"),
            ("v12", "int8"),
            ("basis", "int8"),
        ]
        values += [
            predictor.p_alive,
            predictor.expected_purchases(90),
            _kopecks(value),
            _kopecks(v12),
            np.ones(len(ids), dtype=np.int64),
        ]
    else:
        value = backtest.fallback_clv(
            days.margin_window,
            window_days=conf.window_days,
            months=conf.clv_horizon_months,
            annual_discount_rate=float(conf.annual_discount_rate),
        )
        columns += [("clv", "int8"), ("basis", "int8")]
        values += [_kopecks(value), np.full(len(ids), 2, dtype=np.int64)]
    if scores is not None:
        # The scores follow the buyers of `am_rc`, the days those of `am_days`: the same
        # customers, both in id order.
        columns += [(kind, "int8") for kind in ranking.RFM_KEYS]
        values += [scores[kind] for kind in ranking.RFM_KEYS]
    pgbinary.copy_in("am_clv", columns, values)


def _kopecks(roubles: np.ndarray) -> np.ndarray:
    """Amounts rounded half up to whole kopecks; a prediction that is not a number is a bug in
    the model code, and writing it would poison every sum the dashboard makes."""
    if not np.all(np.isfinite(roubles)):
        raise ValueError("CLV predictions must be finite numbers")
    return np.floor(np.asarray(roubles) * 100 + 0.5).astype(np.int64)


def compute_thresholds(
    params: Params,
    buyers: ranking.Buyers,
    *,
    cuts: dict[str, list[list]],
    history_started_at: dt.datetime,
    history_signature: str,
) -> ClassThresholds:
    """VIP entry level and RFM cut points of the buyers (the full run only), stored with the
    run's history watermark in the same transaction as the metrics it describes."""
    conf = params.settings
    vip = ranking.vip_entry(
        buyers.ids, buyers.revenue_window, share=conf.vip_revenue_share, cap=conf.vip_cap
    )
    thresholds, _created = ClassThresholds.objects.update_or_create(
        pk=1,
        defaults={
            "computed_at": params.as_of,
            "active_customers": int((buyers.revenue_window > 0).sum()),
            "vip_count": vip[0] if vip else 0,
            "vip_entry_revenue": Decimal(vip[1]).scaleb(-2) if vip else None,
            "vip_entry_customer_id": vip[2] if vip else None,
            "rfm_cuts": cuts,
            "history_started_at": history_started_at,
            "history_as_of": params.as_of,
            "history_signature": history_signature,
        },
    )
    return thresholds


def _score_sql(kind: str, cuts: list[list], sql_params: dict) -> str:
    keys = ranking.RFM_KEYS[kind]
    left = "ROW(" + ", ".join(f"b.{k}" for k in keys) + ")"
    terms = []
    for index, cut in enumerate(cuts):
        names = []
        for key, value in zip(keys, cut, strict=True):
            name = f"{kind}{index}_{key}"
            # The cut points keep revenue in roubles (as the admin reads them); the rows
            # compared with them carry kopecks.
            sql_params[name] = int(Decimal(value).scaleb(2)) if key == "revenue" else value
            names.append(f"%({name})s::{SQL_TYPES[key]}")
        terms.append(f"({left} >= ROW({', '.join(names)}))::int")
    return "1" + "".join(f" + {t}" for t in terms)


# A score before any full run has stored cut points: a typed NULL, since a bare NULL in the
# subquery reaches SEGMENT_SQL as text and `r = 5` then has no operator (a fresh install's
# per-receipt refresh failed that way until the first nightly run).
UNSCORED = "NULL::integer"

SEGMENT_SQL = """
    CASE
        WHEN r IS NULL THEN ''
        WHEN r = 5 AND f >= 4 THEN 'champions'
        WHEN r IN (3, 4) AND f >= 4 THEN 'loyal'
        WHEN r >= 4 AND f IN (2, 3) THEN 'potential_loyalist'
        WHEN r = 5 AND f = 1 THEN 'new'
        WHEN r = 4 AND f = 1 THEN 'promising'
        WHEN r = 3 AND f = 3 THEN 'needs_attention'
        WHEN r = 3 AND f <= 2 THEN 'about_to_sleep'
        WHEN r <= 2 AND f = 5 THEN 'cant_lose'
        WHEN r <= 2 AND f >= 3 THEN 'at_risk'
        ELSE 'hibernating'
    END
"""

# Precedence: VIP is the Pareto head by definition; among the rest, a customer who loses the
# chain money (or has gone) is D before being a potential VIP (A) or fast-growing (B). Money
# in kopecks (the growth rule compares two amounts, so their unit cancels out).
CLASS_SQL = """
    CASE
        WHEN receipts = 0 THEN ''
        WHEN is_vip THEN 'VIP'
        WHEN margin_w <= 0 OR p_alive < %(d_alive)s THEN 'D'
        WHEN %(vip_entry)s::bigint IS NOT NULL AND v12 >= %(vip_entry)s::bigint THEN 'A'
        WHEN %(window_days)s > 90 AND revenue_w - revenue_90 > 0
             AND revenue_90 >= %(b_ratio)s * (revenue_w - revenue_90) * 90
                               / (%(window_days)s - 90)
             THEN 'B'
        WHEN first_at >= %(new_start)s AND second_at IS NOT NULL
             AND second_at <= first_at + make_interval(days => %(b_days)s)
             THEN 'B'
        ELSE 'C'
    END
"""

COLUMNS = (
    "first_purchase_at, last_purchase_at, receipts, receipts_window, revenue, revenue_window, "
    "margin, margin_window, average_receipt, recency_score, "
    "frequency_score, monetary_score, rfm_segment, value_class, historical_lcv, predicted_clv, "
    "clv_basis, predicted_value_12m, p_alive, expected_purchases_90d, contacts_window, "
    "contact_effort, computed_at"
)


def write_metrics(
    params: Params,
    thresholds: ClassThresholds | None,
    computed_at,
    *,
    customer_id: int | None = None,
    whole_table: bool = False,
) -> int:
    """Score, classify and write the rows of `base_sql`; returns the number of rows written.

    `whole_table` (the full run): the table is rebuilt from these rows and swapped in
    (`crm.pgswap`), far cheaper than updating every row in place, keeping rows a one-customer
    refresh wrote after this run began; the RFM scores come from `am_clv`. Otherwise (one
    customer) the row is upserted, scored against the stored cut points.

    Money arrives in kopecks and becomes numeric here, once per written figure; the average
    receipt is rounded half away from zero in integers, as numeric round() would.
    """
    p = {**params.sql(), "computed_at": computed_at, "cid": customer_id}
    cuts = thresholds.rfm_cuts if thresholds else {}
    entry = thresholds.vip_entry_revenue if thresholds else None
    p["vip_entry"] = int(entry.scaleb(2)) if entry is not None else None
    p["vip_id"] = thresholds.vip_entry_customer_id if thresholds else None
    if whole_table:
        scores = {kind: f"v.{kind}" for kind in ranking.RFM_KEYS}
    else:
        scores = {
            kind: (_score_sql(kind, cuts[kind], p) if thresholds and kind in cuts else UNSCORED)
            for kind in ranking.RFM_KEYS
        }
    updates = ", ".join(
        f"{c.strip()} = EXCLUDED.{c.strip()}" for c in COLUMNS.split(",") if c.strip()
    )
    select = f"""
        SELECT customer_id, first_at, last_at, receipts, receipts_w, revenue * 0.01,
               revenue_w * 0.01, margin * 0.01, margin_w * 0.01,
               -- Integer division truncates toward zero: adding half a receipt count of the
               -- revenue's sign rounds half away from zero.
               CASE WHEN receipts > 0
                    THEN (2 * revenue + CASE WHEN revenue < 0 THEN -receipts ELSE receipts END)
                         / (2 * receipts) * 0.01
               END,
               r, f, m, {SEGMENT_SQL}, {CLASS_SQL},
               (margin - acquisition_cost) * 0.01, clv * 0.01,
               CASE basis WHEN 1 THEN 'model' WHEN 2 THEN 'fallback' ELSE '' END,
               v12 * 0.01, p_alive, exp90,
               contacts_w,
               -- Contacts per 1,000 roubles of window revenue, which is in kopecks.
               CASE WHEN revenue_w > 0 AND contacts_w = 0 THEN 0
                    WHEN revenue_w > 0 THEN round(contacts_w * 100000.0 / revenue_w, 3)
               END,
               %(computed_at)s
        FROM (
            SELECT b.*, v.p_alive, v.exp90, v.clv, v.v12, v.basis,
                   CASE WHEN b.receipts > 0 THEN {scores["r"]} END AS r,
                   CASE WHEN b.receipts > 0 THEN {scores["f"]} END AS f,
                   CASE WHEN b.receipts > 0 THEN {scores["m"]} END AS m,
                   coalesce(b.revenue_w > 0 AND %(vip_entry)s::bigint IS NOT NULL
                            AND (b.revenue_w > %(vip_entry)s::bigint
                                 OR (b.revenue_w = %(vip_entry)s::bigint
                                     AND b.customer_id <= %(vip_id)s::bigint)), FALSE)
                       AS is_vip
            FROM ({base_sql(customer_id)}) b
            LEFT JOIN am_clv v ON v.customer_id = b.customer_id
            -- OFFSET 0 keeps the subquery from being flattened: flattened, every mention of
            -- r, f or m in the segment and class rules would evaluate its score again.
            OFFSET 0
        ) scored
    """  # noqa: S608 - only fixed SQL fragments are formatted in
    if whole_table:
        # A metrics row written earlier in this transaction (a refresh inside a caller's own
        # transaction) leaves a deferred foreign-key check queued, and PostgreSQL will not drop
        # a table with pending checks: run them now; they would run at commit anyway.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        return pgswap.rebuild_table(
            "analytics_customermetrics",
            select,
            p,
            columns=["customer_id", *(c.strip() for c in COLUMNS.split(",") if c.strip())],
            keep_sql="SELECT * FROM analytics_customermetrics WHERE computed_at > %s",
            keep_params=[computed_at],
            # Readers and writers queue behind the swap's brief exclusive lock; a long reader
            # makes it give up and retry rather than stall everyone queued behind it.
            lock_timeout=0.5,
            lock_attempts=20,
        )
    sql = f"""
        INSERT INTO analytics_customermetrics (customer_id, {COLUMNS})
        {select}
        ON CONFLICT (customer_id) DO UPDATE SET {updates}
        WHERE analytics_customermetrics.computed_at <= EXCLUDED.computed_at
    """  # noqa: S608 - only fixed SQL fragments are formatted in
    with connection.cursor() as cursor:
        cursor.execute(sql, p)
        return cursor.rowcount


def write_favourites(
    computed_at: dt.datetime, *, everyone: bool = False, customer_id: int | None = None
) -> None:
    """Store the favourites of `am_fav` and drop those of the recomputed customers who no
    longer have any: the dirty customers, one customer, or (`everyone`) the whole base.

    A row written after `computed_at` (a refresh while the full run worked) is newer than
    anything this run read, and stays.
    """
    if everyone:
        scope = "TRUE"
    elif customer_id is not None:
        scope = "f.customer_id = %(cid)s"
    else:
        scope = "f.customer_id IN (SELECT customer_id FROM am_dirty)"
    p = {"at": computed_at, "cid": customer_id}
    _execute(
        f"""
        DELETE FROM analytics_favouritecategories f
        WHERE {scope} AND f.computed_at <= %(at)s
              AND NOT EXISTS (SELECT 1 FROM am_fav a
                              WHERE a.customer_id = f.customer_id AND a.categories <> '[]')
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )
    _execute(
        """
        INSERT INTO analytics_favouritecategories AS f (customer_id, categories, computed_at)
        SELECT customer_id, categories, %(at)s FROM am_fav WHERE categories <> '[]'
        ON CONFLICT (customer_id) DO UPDATE
            SET categories = EXCLUDED.categories, computed_at = EXCLUDED.computed_at
            WHERE f.computed_at <= EXCLUDED.computed_at
        """,
        p,
    )


def holiday_keys(conf: AnalyticsSettings, year: int) -> set[str]:
    """ "MM-DD" keys the campaigns can target: the country's public holidays (as campaigns
    list them), the admin's own gift dates from the settings, and the chain's dates."""
    calendar = holidays_lib.country_holidays(
        django_settings.CLIENTELE_DEFAULT_REGION, years=year, observed=False, language="en_US"
    )
    # Days off moved from a weekend fall on other dates every year: no habit can form on them.
    keys = {f"{day:%m-%d}" for day, name in calendar.items() if not name.startswith("Day off")}
    keys |= {str(item["key"]) for item in conf.holidays or [] if item.get("key")}
    try:
        chain_dates = django_apps.get_model("campaigns", "ChainDate")
    except LookupError:
        chain_dates = None
    if chain_dates is not None:
        keys |= {f"{m:02d}-{d:02d}" for m, d in chain_dates.objects.values_list("month", "day")}
    return {key for key in keys if _valid_key(key)}


def _valid_key(key: str) -> bool:
    try:
        dt.date(2000, int(key[:2]), int(key[3:]))  # a leap year, so 02-29 parses
    except (ValueError, IndexError):
        log.warning("ignoring holiday key %r: not MM-DD", key)
        return False
    return len(key) == 5 and key[2] == "-"


def write_holiday_affinity(
    params: Params, customer_id: int | None, only_dirty: bool = False
) -> None:
    """Replace the holiday affinities of the base, of one customer, or of the customers in
    `am_dirty` (`only_dirty`), from their past receipts."""
    conf = params.settings
    holidays = [
        (key, int(key[:2]), int(key[3:]))
        for key in sorted(holiday_keys(conf, timezone.localtime(params.as_of).year))
        if key != "02-29"  # a date that most years lack cannot be a yearly habit
    ]
    scope = _filter("customer_id", customer_id)
    # The base's receipts are found by time (an index range per holiday and year); a few
    # customers' receipts by customer, then matched to the windows in memory.
    receipts, subset = "sales_receipt", ""
    if customer_id is not None:
        receipts = "mine"
        subset = (
            "SELECT id, customer_id, purchased_at, total FROM sales_receipt "
            "WHERE customer_id = %(cid)s"
        )
    if only_dirty:
        scope += " AND customer_id IN (SELECT customer_id FROM am_dirty)"
        receipts = "am_dr"  # their receipts, which `build_base` read
    if subset:
        subset = f"mine AS MATERIALIZED ({subset}),"
    _execute(
        f"DELETE FROM analytics_holidayaffinity WHERE TRUE {scope}",  # noqa: S608 - only fixed SQL fragments are formatted in
        {"cid": customer_id},
    )
    if not holidays:
        return
    today = timezone.localtime(params.as_of).date()
    p = {
        "keys": [h[0] for h in holidays],
        "months": [h[1] for h in holidays],
        "days": [h[2] for h in holidays],
        "lookback": conf.holiday_lookback_days,
        "tz": django_settings.TIME_ZONE,
        "y0": today.year - 10,
        "y1": today.year,
        "today": today,
        "min_years": conf.holiday_min_years,
        "cid": customer_id,
    }
    # First the receipts in the days before each past holiday, then categories only for the
    # customer-holiday pairs that recur.
    _execute("DROP TABLE IF EXISTS am_hol")
    _execute(
        f"""
        CREATE TEMP TABLE am_hol AS
        WITH {subset} hol AS (
            SELECT * FROM unnest(%(keys)s::text[], %(months)s::int[], %(days)s::int[])
                AS h(key, m, d)
        ),
        -- Windows start and end at local midnight, so a receipt lies in one exactly when its
        -- local date is one of the window's days: an equality join, not a range per window.
        win AS MATERIALIZED (
            SELECT h.key, y, make_date(y, h.m, h.d) - k AS day
            FROM hol h
            CROSS JOIN generate_series(%(y0)s, %(y1)s) AS y
            CROSS JOIN generate_series(1, %(lookback)s) AS k
            WHERE make_date(y, h.m, h.d) <= %(today)s
        )
        SELECT r.customer_id, w.key, w.y, r.id AS receipt_id, r.total
        FROM {receipts} r
        JOIN win w ON w.day = (r.purchased_at AT TIME ZONE %(tz)s)::date
        WHERE r.customer_id IS NOT NULL
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )
    _execute("ANALYZE am_hol")
    _execute(
        """
        WITH per AS (
            SELECT customer_id, key, count(DISTINCT y) AS years, max(y) AS last_year,
                   sum(total) AS amount
            FROM am_hol GROUP BY 1, 2
            HAVING count(DISTINCT y) >= %(min_years)s
        ),
        top AS (
            SELECT DISTINCT ON (h.customer_id, h.key) h.customer_id, h.key, p.category_id
            FROM am_hol h
            JOIN per USING (customer_id, key)
            JOIN sales_receiptline l ON l.receipt_id = h.receipt_id
            JOIN sales_product p ON p.id = l.product_id
            WHERE p.category_id IS NOT NULL
            GROUP BY h.customer_id, h.key, p.category_id
            ORDER BY h.customer_id, h.key, sum(l.amount) DESC, p.category_id
        )
        INSERT INTO analytics_holidayaffinity
            (customer_id, holiday, years, last_year, category_id, amount)
        SELECT per.customer_id, per.key, per.years, per.last_year, top.category_id, per.amount
        FROM per LEFT JOIN top USING (customer_id, key)
        """,
        p,
    )


def recompute_all(
    *,
    as_of: dt.datetime | None = None,
    progress: Callable = _noop,
    from_scratch: bool = False,
) -> tuple[int, ClvModelFit]:
    """The full run: aggregate, fit, rank and write the whole base. Raises RecomputeBusy.

    Every metric of every customer is recomputed from the receipts; favourite categories and
    holiday affinity are recomputed from the lines for the customers whose history changed
    since the previous run (see `History`), or for everyone when `from_scratch`, when there
    is no previous run, or when the holiday settings or category names changed.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [FULL_RUN_KEY])
        if not cursor.fetchone()[0]:
            raise RecomputeBusy
    try:
        for setting in session_settings():
            _execute(setting)
        computed_at = timezone.now()
        params = Params.build(as_of)
        signature = history_signature(params)
        previous = ClassThresholds.objects.filter(pk=1).first()
        history = None if from_scratch else plan_history(params, previous, signature)
        build_base(params, None, progress, history)
        progress("model fit", 60)
        started = time.perf_counter()
        buyers = fetch_buyers(params)  # fetched once for the ranking
        days = fetch_days(params)  # and the buyers' purchase days for the models
        if not np.array_equal(days.ids, buyers.ids):
            # A buyer without stored purchase days (rows removed by hand): rebuild them all
            # rather than misalign the models' arrays with the ranking's.
            log.warning("purchase days incomplete: rebuilding them for every buyer")
            p = {**params.sql(), "cid": None, "foreign_stores": foreign_store_ids()}
            mine = "AND r.store_id <> ALL(%(foreign_stores)s)" if p["foreign_stores"] else ""
            _execute("DROP TABLE IF EXISTS am_days")
            build_purchase_days(p, None, True, mine)
            days = fetch_days(params)
        fit = fit_models(days, ClvModelFit.objects.first(), params.settings, progress)
        log.info("CLV models fitted in %.1fs: %s", time.perf_counter() - started, fit.message)
        progress("ranking", 75)
        cuts, scores = ranking.rfm_ranks(buyers)
        progress("predictions", 85)
        write_predictions(params, fit, days, scores)
        # Without statistics the planner cannot tell that this is one row per buyer.
        _execute("ANALYZE am_clv")
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TABLE_KEY])
            thresholds = compute_thresholds(
                params,
                buyers,
                cuts=cuts,
                history_started_at=computed_at,
                history_signature=signature,
            )
            progress("writing", 90)
            write_favourites(computed_at, everyone=history is None)
            write_holiday_affinity(params, None, only_dirty=history is not None)
            # Last, and committed at once: the swap locks the table and customers briefly.
            written = write_metrics(params, thresholds, computed_at, whole_table=True)
        return written, fit
    finally:
        drop_temp_tables()
        _execute(SESSION_RESET)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [FULL_RUN_KEY])


def refresh_one(*, customer_id: int, as_of: dt.datetime | None = None) -> int:
    """The same pipeline for one customer, ranked against the last full run's cut points."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [TABLE_KEY])
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CUSTOMER_KEY_BASE + customer_id])
        computed_at = timezone.now()
        params = Params.build(as_of)
        # On an error the rollback drops the temporary tables with everything else.
        build_base(params, customer_id, _noop)
        write_predictions(params, ClvModelFit.objects.first())
        thresholds = ClassThresholds.objects.filter(pk=1).first()
        written = write_metrics(params, thresholds, computed_at, customer_id=customer_id)
        write_favourites(computed_at, customer_id=customer_id)
        write_holiday_affinity(params, customer_id)
        drop_temp_tables()
        return written
