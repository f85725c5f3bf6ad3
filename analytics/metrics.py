"""The metrics pipeline: set-based SQL over receipts, one code path for the base and one customer.

A run builds temporary tables (`am_rc` receipts per customer, `am_cat` lines net of returns per
customer and category, `am_base` one row per customer, `am_clv` model predictions), then one
`INSERT ... SELECT ... ON CONFLICT DO UPDATE` writes every metric. The full run first derives the
cut points (VIP entry level, RFM quintile boundaries) from `am_base` and stores them in
`ClassThresholds`; the scoring SQL compares each customer with those stored cut points, so a
one-customer refresh after a receipt ranks exactly like the full run did.

RFM quintiles: customers are ranked by row_number with a deterministic tiebreak and cut with
`ntile(5)`, which gives five equal groups even when thousands share one purchase count. Ties
are broken by the other two measures and then by id (frequency: receipts, revenue, last
purchase, id), so among one-receipt customers the bigger spenders score higher. `cume_dist`
was rejected because heavy ties would collapse the low quintiles into one.

Concurrency: a full run holds a session advisory lock (a second full run is skipped, not
queued) and writes under an exclusive transaction lock; a one-customer refresh takes the shared
lock plus a per-customer one. The final upsert never overwrites a row computed after the full
run's snapshot started, so a receipt refreshed mid-run is not undone by older aggregates.
"""

from __future__ import annotations

import datetime as dt
import io
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

from . import clv
from .models import AnalyticsSettings, ClassThresholds, ClvModelFit

log = logging.getLogger(__name__)

# Advisory lock keys: one for "a full run is in progress", one guarding the metrics table, and
# a range for single customers (the key space is 64-bit, ids stay far below 2**40).
FULL_RUN_KEY = 0x434C_0001
TABLE_KEY = 0x434C_0002
CUSTOMER_KEY_BASE = 0x434C << 40

SESSION_SETTINGS = ("SET work_mem = '512MB'", "SET jit = off")
TEMP_TABLES = ("am_rc", "am_cat", "am_base", "am_clv", "am_hol")
RFM_KEYS = {
    "r": ("last_at", "receipts", "revenue", "customer_id"),
    "f": ("receipts", "revenue", "last_at", "customer_id"),
    "m": ("revenue", "receipts", "last_at", "customer_id"),
}
SQL_TYPES = {
    "last_at": "timestamptz",
    "receipts": "bigint",
    "revenue": "numeric",
    "customer_id": "bigint",
}


class RecomputeBusy(Exception):
    """Another full recompute holds the lock; this one did nothing."""


@dataclass
class Params:
    as_of: dt.datetime
    window_start: dt.datetime
    quarter_start: dt.datetime
    new_start: dt.datetime
    settings: AnalyticsSettings

    @classmethod
    def build(cls, as_of: dt.datetime | None) -> Params:
        conf = AnalyticsSettings.load()
        now = as_of or timezone.now()
        return cls(
            as_of=now,
            window_start=now - dt.timedelta(days=conf.window_days),
            quarter_start=now - dt.timedelta(days=90),
            new_start=now - dt.timedelta(days=conf.b_new_customer_days),
            settings=conf,
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


def build_base(params: Params, customer_id: int | None, progress: Callable) -> None:
    """Aggregate receipts, lines and returns into `am_base`, one row per customer.

    Money inside the pipeline is summed as integer kopecks (exact, and far cheaper for
    PostgreSQL than numeric states over millions of rows) and turned back into numeric in
    `am_base`.
    """
    p = {**params.sql(), "cid": customer_id}
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
               coalesce(sum((total * 100)::bigint) FILTER (WHERE purchased_at >= %(ws)s), 0)
                   AS gross_w,
               coalesce(sum((total * 100)::bigint) FILTER (WHERE purchased_at >= %(qs)s), 0)
                   AS gross_90
        FROM sales_receipt
        WHERE customer_id IS NOT NULL AND purchased_at <= %(now)s
              {_filter("customer_id", customer_id)}
        GROUP BY customer_id
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )
    # Temporary tables are never auto-analysed; without statistics the joins below go astray.
    _execute("ANALYZE am_rc")
    progress("receipt lines and returns", 25)
    _execute(
        f"""
        CREATE TEMP TABLE am_cat AS
        SELECT customer_id, category_id,
               sum(amount) AS amount,
               sum(margin) AS margin,
               coalesce(sum(margin) FILTER (WHERE at >= %(ws)s), 0) AS margin_w,
               coalesce(sum(amount) FILTER (WHERE refund AND at >= %(ws)s), 0) AS refund_w,
               coalesce(sum(amount) FILTER (WHERE refund AND at >= %(qs)s), 0) AS refund_90
        FROM (
            SELECT r.customer_id, p.category_id, r.purchased_at AS at, FALSE AS refund,
                   (l.amount * 100)::bigint AS amount, (l.margin * 100)::bigint AS margin
            FROM sales_receiptline l
            JOIN sales_receipt r ON r.id = l.receipt_id
            JOIN sales_product p ON p.id = l.product_id
            WHERE r.customer_id IS NOT NULL AND r.purchased_at <= %(now)s
                  {_filter("r.customer_id", customer_id)}
            UNION ALL
            -- Returns count when they happen, and their refund comes off the window revenue.
            SELECT r.customer_id, p.category_id, d.returned_at, TRUE,
                   -(rl.amount * 100)::bigint, -(rl.margin * 100)::bigint
            FROM sales_returnline rl
            JOIN sales_return d ON d.id = rl.return_doc_id
            JOIN sales_receipt r ON r.id = d.receipt_id
            JOIN sales_receiptline l ON l.id = rl.receipt_line_id
            JOIN sales_product p ON p.id = l.product_id
            WHERE r.customer_id IS NOT NULL AND d.returned_at <= %(now)s
                  AND r.purchased_at <= %(now)s
                  {_filter("r.customer_id", customer_id)}
        ) moves
        GROUP BY customer_id, category_id
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )
    _execute("ANALYZE am_cat")
    progress("customers", 45)
    _execute(
        f"""
        CREATE TEMP TABLE am_base AS
        SELECT c.id AS customer_id,
               rc.first_at, rc.last_at,
               coalesce(rc.receipts, 0) AS receipts,
               coalesce(rc.receipts_w, 0) AS receipts_w,
               (coalesce(t.amount, 0) / 100.0)::numeric(14, 2) AS revenue,
               ((coalesce(rc.gross_w, 0) + coalesce(t.refund_w, 0)) / 100.0)::numeric(14, 2)
                   AS revenue_w,
               ((coalesce(rc.gross_90, 0) + coalesce(t.refund_90, 0)) / 100.0)::numeric(14, 2)
                   AS revenue_90,
               (coalesce(t.margin, 0) / 100.0)::numeric(14, 2) AS margin,
               (coalesce(t.margin_w, 0) / 100.0)::numeric(14, 2) AS margin_w,
               coalesce(fav.categories, '[]'::jsonb) AS favourite_categories,
               coalesce(ct.n, 0) AS contacts_w,
               coalesce(ch.acquisition_cost, 0) AS acquisition_cost,
               CASE WHEN rc.receipts >= 2 THEN coalesce(sp.second_at, rc.first_at) END
                   AS second_at
        FROM customers_customer c
        LEFT JOIN am_rc rc ON rc.customer_id = c.id
        LEFT JOIN (
            SELECT customer_id, sum(amount) AS amount, sum(margin) AS margin,
                   sum(margin_w) AS margin_w, sum(refund_w) AS refund_w,
                   sum(refund_90) AS refund_90
            FROM am_cat GROUP BY customer_id
        ) t ON t.customer_id = c.id
        LEFT JOIN (
            SELECT top.customer_id,
                   jsonb_agg(jsonb_build_object('id', top.category_id, 'name', cat.name)
                             ORDER BY top.rank) AS categories
            FROM (
                SELECT customer_id, category_id,
                       row_number() OVER (PARTITION BY customer_id
                                          ORDER BY amount DESC, category_id) AS rank
                FROM am_cat WHERE category_id IS NOT NULL AND amount > 0
            ) top
            JOIN sales_category cat ON cat.id = top.category_id
            WHERE top.rank <= 3
            GROUP BY top.customer_id
        ) fav ON fav.customer_id = c.id
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
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )
    _execute("ALTER TABLE am_base ADD PRIMARY KEY (customer_id)")
    _execute("ANALYZE am_base")


def model_arrays(params: Params) -> tuple[np.ndarray, ...]:
    """(customer ids, x, t_x, T, average receipt) of every buyer in `am_base`, in one query."""
    rows = _fetchall(
        """
        SELECT customer_id,
               receipts - 1,
               floor(extract(epoch FROM last_at - first_at) / 86400),
               floor(extract(epoch FROM %(now)s - first_at) / 86400),
               revenue / receipts
        FROM am_base WHERE receipts > 0
        """,
        params.sql(),
    )
    if not rows:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty, empty, empty
    data = np.array(rows, dtype=float)
    return (data[:, 0].astype(np.int64), data[:, 1], data[:, 2], data[:, 3], data[:, 4])


def fit_models(arrays: tuple[np.ndarray, ...]) -> ClvModelFit:
    """Fit BG/NBD and Gamma-Gamma on the buyers' arrays and keep the fit, degenerate or not."""
    _ids, x, t_x, T, m = arrays
    result = clv.fit(x, t_x, T, m)
    bg, gg = result.bgnbd, result.gamma_gamma
    return ClvModelFit.objects.create(
        fitted_at=timezone.now(),
        customers=result.customers,
        repeat_customers=result.repeat_customers,
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
    )


def write_predictions(
    params: Params, fit: ClvModelFit | None, arrays: tuple[np.ndarray, ...] | None = None
) -> None:
    """Compute P(alive), 90-day purchases and CLV for `am_base` and COPY them into `am_clv`."""
    _execute(
        "CREATE TEMP TABLE am_clv (customer_id bigint PRIMARY KEY, p_alive float8, "
        "exp90 float8, clv numeric(14, 2), v12 numeric(14, 2))"
    )
    if fit is None or not fit.usable_bgnbd:
        return
    ids, x, t_x, T, m = arrays if arrays is not None else model_arrays(params)
    if len(ids) == 0:
        return
    bg = clv.BgNbdParams(fit.r, fit.alpha, fit.a, fit.b)
    gg = clv.GammaGammaParams(fit.p, fit.q, fit.gamma) if fit.usable_gamma_gamma else None
    conf = params.settings
    spend = clv.conditional_expected_spend(gg, x, m)
    p_alive = clv.probability_alive(bg, x, t_x, T)
    exp90 = clv.conditional_expected_purchases(bg, 90, x, t_x, T)
    value = clv.predicted_clv(
        bg,
        spend,
        x,
        t_x,
        T,
        months=conf.clv_horizon_months,
        annual_discount_rate=float(conf.annual_discount_rate),
    )
    v12 = spend * clv.conditional_expected_purchases(bg, 365.0, x, t_x, T)
    buffer = io.StringIO()
    for row in zip(ids, p_alive, exp90, value, v12, strict=True):
        buffer.write("{:d}\t{:.6f}\t{:.6f}\t{:.2f}\t{:.2f}\n".format(*row))
    with connection.cursor() as cursor:
        with cursor.copy("COPY am_clv FROM STDIN") as copy:
            copy.write(buffer.getvalue())


def compute_thresholds(params: Params) -> ClassThresholds:
    """VIP entry level and RFM cut points from `am_base` (the full run only)."""
    conf = params.settings
    vip = _fetchall(
        """
        SELECT customer_id, revenue_w, rn, n FROM (
            SELECT customer_id, revenue_w,
                   row_number() OVER w AS rn,
                   sum(revenue_w) OVER w - revenue_w AS before,
                   sum(revenue_w) OVER () AS total,
                   count(*) OVER () AS n
            FROM am_base WHERE revenue_w > 0
            WINDOW w AS (ORDER BY revenue_w DESC, customer_id)
        ) ranked
        WHERE before < %(share)s * total AND rn <= floor(%(cap)s * n)
        ORDER BY rn DESC LIMIT 1
        """,
        {"share": conf.vip_revenue_share, "cap": conf.vip_cap},
    )
    active = _fetchall("SELECT count(*) FROM am_base WHERE revenue_w > 0")[0][0]
    cuts = {}
    for kind, keys in RFM_KEYS.items():
        order = ", ".join(keys)
        rows = _fetchall(
            f"""
            SELECT DISTINCT ON (score) score, {order} FROM (
                SELECT ntile(5) OVER (ORDER BY {order}) AS score, {order}
                FROM am_base WHERE receipts > 0
            ) scored
            WHERE score > 1
            ORDER BY score, {order}
            """  # noqa: S608 - only fixed SQL fragments are formatted in
        )
        cuts[kind] = [[_jsonable(v) for v in row[1:]] for row in rows]
    thresholds, _created = ClassThresholds.objects.update_or_create(
        pk=1,
        defaults={
            "computed_at": params.as_of,
            "active_customers": active,
            "vip_count": vip[0][2] if vip else 0,
            "vip_entry_revenue": vip[0][1] if vip else None,
            "vip_entry_customer_id": vip[0][0] if vip else None,
            "rfm_cuts": cuts,
        },
    )
    return thresholds


def _jsonable(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _score_sql(kind: str, cuts: list[list], sql_params: dict) -> str:
    keys = RFM_KEYS[kind]
    left = "ROW(" + ", ".join(f"b.{k}" for k in keys) + ")"
    terms = []
    for index, cut in enumerate(cuts):
        names = []
        for key, value in zip(keys, cut, strict=True):
            name = f"{kind}{index}_{key}"
            sql_params[name] = value
            names.append(f"%({name})s::{SQL_TYPES[key]}")
        terms.append(f"({left} >= ROW({', '.join(names)}))::int")
    return "1" + "".join(f" + {t}" for t in terms)


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
# chain money (or has gone) is D before being a potential VIP (A) or fast-growing (B).
CLASS_SQL = """
    CASE
        WHEN receipts = 0 THEN ''
        WHEN is_vip THEN 'VIP'
        WHEN margin_w <= 0 OR p_alive < %(d_alive)s THEN 'D'
        WHEN %(vip_entry)s::numeric IS NOT NULL AND v12 >= %(vip_entry)s::numeric THEN 'A'
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
    "margin, margin_window, average_receipt, favourite_categories, recency_score, "
    "frequency_score, monetary_score, rfm_segment, value_class, historical_lcv, predicted_clv, "
    "predicted_value_12m, p_alive, expected_purchases_90d, contacts_window, contact_effort, "
    "computed_at"
)


def write_metrics(params: Params, thresholds: ClassThresholds | None, computed_at) -> int:
    """Score, classify and upsert every row of `am_base`; returns the number of rows written."""
    p = {**params.sql(), "computed_at": computed_at}
    cuts = thresholds.rfm_cuts if thresholds else {}
    p["vip_entry"] = thresholds.vip_entry_revenue if thresholds else None
    p["vip_id"] = thresholds.vip_entry_customer_id if thresholds else None
    scores = {
        kind: (_score_sql(kind, cuts[kind], p) if thresholds and kind in cuts else "NULL")
        for kind in RFM_KEYS
    }
    updates = ", ".join(
        f"{c.strip()} = EXCLUDED.{c.strip()}" for c in COLUMNS.split(",") if c.strip()
    )
    sql = f"""
        INSERT INTO analytics_customermetrics (customer_id, {COLUMNS})
        SELECT customer_id, first_at, last_at, receipts, receipts_w, revenue, revenue_w,
               margin, margin_w,
               CASE WHEN receipts > 0 THEN round(revenue / receipts, 2) END,
               favourite_categories, r, f, m, {SEGMENT_SQL}, {CLASS_SQL},
               margin - acquisition_cost, clv, v12, p_alive, exp90, contacts_w,
               CASE WHEN revenue_w > 0 THEN round(contacts_w * 1000.0 / revenue_w, 3) END,
               %(computed_at)s
        FROM (
            SELECT b.*, v.p_alive, v.exp90, v.clv, v.v12,
                   CASE WHEN b.receipts > 0 THEN {scores["r"]} END AS r,
                   CASE WHEN b.receipts > 0 THEN {scores["f"]} END AS f,
                   CASE WHEN b.receipts > 0 THEN {scores["m"]} END AS m,
                   coalesce(b.revenue_w > 0 AND %(vip_entry)s::numeric IS NOT NULL
                            AND (b.revenue_w > %(vip_entry)s::numeric
                                 OR (b.revenue_w = %(vip_entry)s::numeric
                                     AND b.customer_id <= %(vip_id)s::bigint)), FALSE)
                       AS is_vip
            FROM am_base b LEFT JOIN am_clv v ON v.customer_id = b.customer_id
        ) scored
        ON CONFLICT (customer_id) DO UPDATE SET {updates}
        WHERE analytics_customermetrics.computed_at <= EXCLUDED.computed_at
    """  # noqa: S608 - only fixed SQL fragments are formatted in
    with connection.cursor() as cursor:
        cursor.execute(sql, p)
        return cursor.rowcount


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


def write_holiday_affinity(params: Params, customer_id: int | None) -> None:
    """Replace the holiday affinities of the base (or of one customer) from past receipts."""
    conf = params.settings
    holidays = [
        (key, int(key[:2]), int(key[3:]))
        for key in sorted(holiday_keys(conf, timezone.localtime(params.as_of).year))
        if key != "02-29"  # a date that most years lack cannot be a yearly habit
    ]
    _execute(
        f"DELETE FROM analytics_holidayaffinity WHERE TRUE {_filter('customer_id', customer_id)}",  # noqa: S608 - only fixed SQL fragments are formatted in
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
    # First the receipts in the days before each past holiday (an index range per holiday and
    # year), then categories only for the customer-holiday pairs that recur.
    _execute("DROP TABLE IF EXISTS am_hol")
    _execute(
        f"""
        CREATE TEMP TABLE am_hol AS
        WITH hol AS (
            SELECT * FROM unnest(%(keys)s::text[], %(months)s::int[], %(days)s::int[])
                AS h(key, m, d)
        ),
        win AS (
            SELECT h.key, y,
                   (make_date(y, h.m, h.d) - %(lookback)s)::timestamp AT TIME ZONE %(tz)s
                       AS starts,
                   make_date(y, h.m, h.d)::timestamp AT TIME ZONE %(tz)s AS ends
            FROM hol h CROSS JOIN generate_series(%(y0)s, %(y1)s) AS y
            WHERE make_date(y, h.m, h.d) <= %(today)s
        )
        SELECT r.customer_id, w.key, w.y, r.id AS receipt_id, r.total
        FROM win w
        JOIN sales_receipt r ON r.purchased_at >= w.starts AND r.purchased_at < w.ends
        WHERE r.customer_id IS NOT NULL {_filter("r.customer_id", customer_id)}
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


def _noop(step: str, percent: int) -> None:
    return None


def recompute_all(
    *, as_of: dt.datetime | None = None, progress: Callable = _noop
) -> tuple[int, ClvModelFit]:
    """The full run: aggregate, fit, rank and write the whole base. Raises RecomputeBusy."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [FULL_RUN_KEY])
        if not cursor.fetchone()[0]:
            raise RecomputeBusy
    try:
        # Whole-base aggregates want their hash tables in memory, and JIT compiling each of a
        # dozen statements costs more than it saves at this size.
        for setting in SESSION_SETTINGS:
            _execute(setting)
        computed_at = timezone.now()
        params = Params.build(as_of)
        build_base(params, None, progress)
        progress("model fit", 60)
        started = time.perf_counter()
        arrays = model_arrays(params)  # fetched once for the fit and the predictions
        fit = fit_models(arrays)
        log.info("CLV models fitted in %.1fs: %s", time.perf_counter() - started, fit.message)
        progress("predictions", 75)
        write_predictions(params, fit, arrays)
        progress("ranking", 85)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TABLE_KEY])
            thresholds = compute_thresholds(params)
            progress("writing", 90)
            written = write_metrics(params, thresholds, computed_at)
            write_holiday_affinity(params, None)
        return written, fit
    finally:
        drop_temp_tables()
        _execute("RESET work_mem; RESET jit")
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
        written = write_metrics(params, thresholds, computed_at)
        write_holiday_affinity(params, customer_id)
        drop_temp_tables()
        return written
