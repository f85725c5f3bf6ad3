"""Stage 3: the cut points and the writes (metrics, favourite categories).

`write_metrics` reads the `BaseTables` (through `base.base_sql`) and the `PredictionTable`
(am_clv); `write_favourites` reads the `BaseTables`' am_fav and am_dirty.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection

from crm.pg import rebuild as pgswap

from .. import ranking
from ..models import ClassThresholds
from .base import base_sql
from .session import BaseTables, Params, PredictionTable, _execute

SQL_TYPES = {
    "last_at": "timestamptz",
    "receipts": "bigint",
    "revenue": "bigint",
    "customer_id": "bigint",
}


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

# B's growth rule: last quarter's revenue against b_ratio times the average quarter before it
# in the window. The rule is the numeric comparison of the ELSE branch; for amounts within
# `growth_params`' limits (any real customer's) the same answer comes from bigint arithmetic
# (see there), which spares nearly every row three numeric conversions, two products and a
# division: about a fifth of the metrics INSERT's time (bench/README.md, session 5).
GROWTH_SQL = """
    CASE WHEN revenue_w - revenue_90 <= %(b_limit)s AND abs(revenue_90) <= %(b_limit_90)s
         THEN revenue_90 * %(b_den)s * (%(window_days)s - 90)
              >= %(b_num)s * (revenue_w - revenue_90) * 90
         ELSE revenue_90 >= %(b_ratio)s * (revenue_w - revenue_90) * 90 / (%(window_days)s - 90)
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
             AND GROWTH
             THEN 'B'
        WHEN first_at >= %(new_start)s AND second_at IS NOT NULL
             AND second_at <= first_at + make_interval(days => %(b_days)s)
             THEN 'B'
        ELSE 'C'
    END
""".replace("GROWTH", GROWTH_SQL)

# Beyond this the bigint products of `growth_params` could approach 2**63.
_BIGINT_ROOM = 2**62


def growth_params(b_ratio: Decimal, window_days: int) -> dict[str, int]:
    """Parameters of CLASS_SQL's growth rule in integers: `b_ratio` = b_num / b_den, and the
    largest 90-day and prior amounts (kopecks) for which the bigint comparison is used.

    The numeric rule compares the integer revenue_90 with q = b_ratio * d * 90 / (window - 90)
    (d = the prior amount), the division rounded to at least 16 significant digits. Unless q is
    a whole number, it lies at least 1 / (b_den * (window - 90)) away from one; for q below
    10**12 the division keeps at least 8 decimals, so rounding moves it by at most 0.5e-8 and
    cannot carry it across a whole number when b_den * (window - 90) is under 10**7: the
    integer comparison revenue_90 * b_den * (window - 90) >= b_num * d * 90 then gives the same
    answer. The limits keep q below 10**12 and both products within bigint; above them (or for
    an unusual ratio) the rule falls back to the numeric comparison itself.
    """
    num, den = b_ratio.as_integer_ratio()
    span = window_days - 90
    if num < 0 or span <= 0 or den * span >= 10**7:
        return {"b_num": num, "b_den": den, "b_limit": -1, "b_limit_90": -1}
    limit = (
        _BIGINT_ROOM
        if num == 0
        else min((10**12 * den * span - 1) // (num * 90), _BIGINT_ROOM // (num * 90))
    )
    return {
        "b_num": num,
        "b_den": den,
        "b_limit": limit,
        "b_limit_90": _BIGINT_ROOM // (den * span),
    }


COLUMNS = (
    "first_purchase_at, last_purchase_at, receipts, receipts_window, revenue, revenue_window, "
    "margin, margin_window, average_receipt, recency_score, "
    "frequency_score, monetary_score, rfm_segment, value_class, historical_lcv, predicted_clv, "
    "clv_basis, predicted_value_12m, p_alive, expected_purchases_90d, contacts_window, "
    "contact_effort, computed_at"
)


def write_metrics(
    params: Params,
    base: BaseTables,
    predictions: PredictionTable,
    thresholds: ClassThresholds | None,
    computed_at,
    *,
    customer_id: int | None = None,
    whole_table: bool = False,
) -> int:
    """Score, classify and write the rows of `base_sql` with the predictions of `am_clv`;
    returns the number of rows written.

    `whole_table` (the full run): the table is rebuilt from these rows and swapped in
    (`crm.pg.rebuild`), far cheaper than updating every row in place, keeping rows a one-customer
    refresh wrote after this run began; the RFM scores come from `am_clv`. Otherwise (one
    customer) the row is upserted, scored against the stored cut points.

    Money arrives in kopecks and becomes numeric here, once per written figure; the average
    receipt is rounded half away from zero in integers, as numeric round() would.
    """
    p = {**params.sql(), "computed_at": computed_at, "cid": customer_id}
    p.update(growth_params(params.settings.b_growth_ratio, params.settings.window_days))
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
        SELECT customer_id, first_at, last_at, receipts, receipts_w,
               -- The full run sends the buyers' money as numerics (write_predictions); the
               -- SQL fills it in for the others (typed alike, so nothing is converted twice).
               coalesce(revenue_money, (revenue * 0.01)::numeric(14, 2)),
               coalesce(revenue_w_money, (revenue_w * 0.01)::numeric(14, 2)),
               coalesce(margin_money, (margin * 0.01)::numeric(14, 2)),
               coalesce(margin_w_money, (margin_w * 0.01)::numeric(14, 2)),
               -- Integer division truncates toward zero: adding half a receipt count of the
               -- revenue's sign rounds half away from zero.
               coalesce(average_money, (CASE WHEN receipts > 0
                    THEN (2 * revenue + CASE WHEN revenue < 0 THEN -receipts ELSE receipts END)
                         / (2 * receipts) * 0.01
               END)::numeric(14, 2)),
               r, f, m, {SEGMENT_SQL}, {CLASS_SQL},
               (margin - acquisition_cost) * 0.01, clv,
               CASE basis WHEN 1 THEN 'model' WHEN 2 THEN 'fallback' ELSE '' END,
               v12_money, p_alive, exp90,
               contacts_w,
               -- Contacts per 1,000 roubles of window revenue, which is in kopecks.
               CASE WHEN revenue_w > 0 AND contacts_w = 0 THEN 0
                    WHEN revenue_w > 0 THEN round(contacts_w * 100000.0 / revenue_w, 3)
               END,
               %(computed_at)s
        FROM (
            SELECT b.*, v.p_alive, v.exp90, v.clv, v.v12, v.v12_money, v.basis,
                   v.revenue AS revenue_money, v.revenue_w AS revenue_w_money,
                   v.margin AS margin_money, v.margin_w AS margin_w_money,
                   v.average AS average_money,
                   CASE WHEN b.receipts > 0 THEN {scores["r"]} END AS r,
                   CASE WHEN b.receipts > 0 THEN {scores["f"]} END AS f,
                   CASE WHEN b.receipts > 0 THEN {scores["m"]} END AS m,
                   coalesce(b.revenue_w > 0 AND %(vip_entry)s::bigint IS NOT NULL
                            AND (b.revenue_w > %(vip_entry)s::bigint
                                 OR (b.revenue_w = %(vip_entry)s::bigint
                                     AND b.customer_id <= %(vip_id)s::bigint)), FALSE)
                       AS is_vip
            FROM ({base_sql(base, customer_id)}) b
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
    base: BaseTables,
    computed_at: dt.datetime,
    *,
    everyone: bool = False,
    customer_id: int | None = None,
) -> None:
    """Store the favourites of `am_fav` and drop those of the recomputed customers who no
    longer have any: the dirty customers, one customer, or (`everyone`) the whole base.

    A row written after `computed_at` (a refresh while the full run worked) is newer than
    anything this run read, and stays.
    """
    for sql, sql_params in favourite_write_statements(
        computed_at, everyone=everyone, customer_id=customer_id
    ):
        _execute(sql, sql_params)


def favourite_write_statements(
    computed_at: dt.datetime, *, everyone: bool = False, customer_id: int | None = None
) -> list[tuple[str, dict]]:
    """The statements of `write_favourites`, in order, with their parameters."""
    if everyone:
        scope = "TRUE"
    elif customer_id is not None:
        scope = "f.customer_id = %(cid)s"
    else:
        scope = "f.customer_id IN (SELECT customer_id FROM am_dirty)"
    p = {"at": computed_at, "cid": customer_id}
    return [
        (
            f"""
        DELETE FROM analytics_favouritecategories f
        WHERE {scope} AND f.computed_at <= %(at)s
              AND NOT EXISTS (SELECT 1 FROM am_fav a
                              WHERE a.customer_id = f.customer_id AND a.categories <> '[]')
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
            p,
        ),
        (
            """
        INSERT INTO analytics_favouritecategories AS f (customer_id, categories, computed_at)
        SELECT customer_id, categories, %(at)s FROM am_fav WHERE categories <> '[]'
        ON CONFLICT (customer_id) DO UPDATE
            SET categories = EXCLUDED.categories, computed_at = EXCLUDED.computed_at
            WHERE f.computed_at <= EXCLUDED.computed_at
        """,
            p,
        ),
    ]
