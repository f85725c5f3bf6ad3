"""Stage 4: holiday affinity, which customers buy in the run-up to which holidays, from their
past receipts (a temporary `am_hol` of the windows' receipts and `am_holr` of the affinities,
dropped and rebuilt per call).

`affinity_statements` computes them and `write_holiday_affinity` stores them: the full run has
PostgreSQL compute them while Python fits the models (`crm.pg.background`) and stores them in
its final transaction.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.utils import timezone

from .history import holiday_keys
from .session import BaseTables, Params, _execute, _filter


def _holidays(params: Params) -> list[tuple[str, int, int]]:
    return [
        (key, int(key[:2]), int(key[3:]))
        for key in sorted(holiday_keys(params.settings, timezone.localtime(params.as_of).year))
        if key != "02-29"  # a date that most years lack cannot be a yearly habit
    ]


def write_holiday_affinity(
    params: Params,
    customer_id: int | None,
    dirty: BaseTables | None = None,
    *,
    computed: bool = False,
) -> None:
    """Replace the holiday affinities of the base, of one customer, or of the customers in
    `am_dirty` (when `dirty` is given: their receipts are its `am_dr`), from their past
    receipts; `computed`: `affinity_statements` with the same arguments have run already."""
    if not computed:
        for sql, sql_params in affinity_statements(params, customer_id, dirty):
            _execute(sql, sql_params)
    for sql, sql_params in affinity_write_statements(params, customer_id, dirty):
        _execute(sql, sql_params)


def affinity_write_statements(
    params: Params, customer_id: int | None, dirty: BaseTables | None = None
) -> list[tuple[str, dict | None]]:
    """The statements of `write_holiday_affinity` that store `am_holr`, in order."""
    scope = _filter("customer_id", customer_id)
    if dirty is not None:
        scope += " AND customer_id IN (SELECT customer_id FROM am_dirty)"
    statements: list[tuple[str, dict | None]] = [
        (
            f"DELETE FROM analytics_holidayaffinity WHERE TRUE {scope}",  # noqa: S608 - only fixed SQL fragments are formatted in
            {"cid": customer_id},
        )
    ]
    if _holidays(params):
        statements.append(
            (
                """
            INSERT INTO analytics_holidayaffinity
                (customer_id, holiday, years, last_year, category_id, amount)
            SELECT customer_id, holiday, years, last_year, category_id, amount FROM am_holr
            """,
                None,
            )
        )
    return statements


def affinity_statements(
    params: Params, customer_id: int | None, dirty: BaseTables | None = None
) -> list[tuple[str, dict | None]]:
    """The statements that compute the affinities `write_holiday_affinity` stores (the
    temporary `am_holr`), in order, with their parameters; none without holidays."""
    only_dirty = dirty is not None
    conf = params.settings
    holidays = _holidays(params)
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
        receipts = "am_dr"  # their receipts, which `build_base` read
    if subset:
        subset = f"mine AS MATERIALIZED ({subset}),"
    if not holidays:
        return []
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
    return [
        ("DROP TABLE IF EXISTS am_hol, am_holr", None),
        (
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
        ),
        ("ANALYZE am_hol", None),
        (
            """
        CREATE TEMP TABLE am_holr AS
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
        SELECT per.customer_id, per.key AS holiday, per.years, per.last_year,
               top.category_id, per.amount
        FROM per LEFT JOIN top USING (customer_id, key)
        """,
            p,
        ),
    ]
