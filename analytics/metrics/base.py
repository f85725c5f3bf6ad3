"""Stage 1 of the pipeline: per-customer aggregates of receipts and returns.

`build_base` creates the session's `BaseTables` (am_rc, am_dirty, am_dr, am_fav, and am_pd for one
customer; the base's purchase days are the table `PurchaseDays`) and returns them; `base_sql` joins
them into one row per customer for the final write.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings as django_settings

from crm.pg import background
from customers.duplicates.selectors import cards_rehomed_since

from .. import purchase_days
from .history import History
from .session import (
    ONE_CUSTOMER_DAYS,
    STORED_DAYS,
    BaseTables,
    Params,
    _execute,
    _fetchall,
    _filter,
    drop_temp_tables,
)


def foreign_store_ids() -> list[int]:
    """Stores that sell in another currency than the chain's main one."""
    rows = _fetchall(
        "SELECT id FROM sales_store WHERE currency <> %(main)s ORDER BY id",
        {"main": django_settings.CLIENTELE_DEFAULT_CURRENCY},
    )
    return [row[0] for row in rows]


def build_base(
    params: Params,
    customer_id: int | None,
    progress: Callable,
    history: History | None = None,
    *,
    favourites: bool = True,
    changes: bool = True,
    meanwhile: Callable[[], None] | None = None,
) -> BaseTables:
    """Aggregate receipts and their returns per customer in one pass (`am_rc`), find the dirty
    customers (`am_dirty`: everyone when `history` is None), their purchase days,
    receipts (`am_dr`) and favourite categories (`am_fav`, which `write_favourites` stores);
    returns those tables. `base_sql` joins the aggregates into a row per customer. Without
    `favourites` the last two are left to the caller (`favourite_statements`), and so are the
    statistics of `am_rc` (`ANALYZE_RECEIPTS`): nothing before the final write joins it on a
    plan they would change, and the full run gathers them while Python fits the models.
    Without `changes` (a nightly run, `history` given) only `am_rc` is built: the changed
    customers and their purchase days are left to the caller too (`changed_statements`).
    `meanwhile` is called while the server aggregates the receipts (`crm.pg.background`): it
    must not use this session.

    Money comes from the receipts' own totals and margins (kept equal to their lines' sums at
    ingest), so the run reads the lines only for the dirty customers' favourite categories.
    Money inside the pipeline is summed as integer kopecks (the receipts store theirs,
    `total_minor` and `margin_minor`) with `bigint_sum`, exact, and with a plain bigint state
    far cheaper over millions of rows than the numeric or 128-bit states of the built-in sums
    (migration analytics/0008). Money stays in kopecks until it is written (as numerics built
    in numpy for the full run's buyers, `predictions.write_predictions`, else in the final
    write).
    """
    p = {**params.sql(), "cid": customer_id}
    # Customer figures are in the chain's main currency: receipts of stores that sell in
    # another one are left out (nothing here converts currencies, and nothing adds them up).
    p["foreign_stores"] = foreign_store_ids()
    mine = "AND store_id <> ALL(%(foreign_stores)s)" if p["foreign_stores"] else ""
    mine_r = mine.replace("store_id", "r.store_id")
    one_customer = (
        "AND d.receipt_id IN (SELECT id FROM sales_receipt WHERE customer_id = %(cid)s)"
        if customer_id is not None
        else ""
    )
    drop_temp_tables()
    progress("receipts", 10)
    # One pass over the receipts for every per-customer sum, refunds included: the returns are
    # summed per receipt first (a few thousand rows, without reading the receipts) and picked
    # up by the receipts scan (`_create_receipt_aggregates`), instead of looking up each
    # returned receipt by id in a second statement. Returns count when they happen: their
    # refund comes off the window in which it was made (returned_at), whatever the purchase
    # date.
    # Every receipt column read here is in the index `receipt_customer_totals`, which holds
    # a receipt in a fraction of its heap row's bytes and columns: read from the index alone
    # (as the raw scan `bench/metrics.py` compares with is), the aggregate costs about half
    # as much as over the heap. A per-receipt test of a column outside the index ("received
    # since the last run") would send it back to the heap, so which customers changed is
    # asked of the indexes separately (`dirty_sql`). The planner prices the heap's sequential
    # pages below the index's and picks the heap scan (PostgreSQL 15 and 18 alike): for this
    # one statement sequential scans are turned off, unless receipts of foreign stores must
    # be left out (the store is not in the index, so every row would need its heap row).
    index_only = customer_id is None and not p["foreign_stores"]
    receipts = _receipt_aggregates(p, customer_id, one_customer, mine_r)
    if index_only:
        receipts = [("SET enable_seqscan = off", None), *receipts]
    try:
        if meanwhile is None:
            for sql, sql_params in receipts:
                _execute(sql, sql_params)
        else:
            with background.running(receipts):
                meanwhile()
    finally:
        if index_only:
            _execute("RESET enable_seqscan")
    if not changes:
        if history is None or customer_id is not None:
            raise ValueError("only a nightly run of the base leaves its changes to the caller")
        if favourites:
            _execute("ANALYZE am_rc")
        return BaseTables()
    if history is None:
        _execute("CREATE TEMP TABLE am_dirty AS SELECT customer_id FROM am_rc")
        _execute("ALTER TABLE am_dirty ADD PRIMARY KEY (customer_id)")
    else:
        for sql, sql_params in _dirty_statements(p, history, mine_r):
            _execute(sql, sql_params)
    _execute("ANALYZE am_rc, am_dirty" if favourites else "ANALYZE am_dirty")
    progress("purchase days", 30)
    build_purchase_days(p, customer_id, history is None, mine_r)
    if favourites:
        progress("favourite categories", 35)
        for sql, sql_params in favourite_statements(params):
            _execute(sql, sql_params)
    return BaseTables(purchase_days=STORED_DAYS if customer_id is None else ONE_CUSTOMER_DAYS)


def _dirty_statements(p: dict, history: History, mine: str) -> list[tuple[str, dict | None]]:
    dirty = {
        **p,
        "since": history.received_since,
        "visible_after": history.visible_after,
        "starts": [starts for starts, _ends in history.closed_windows],
        "ends": [ends for _starts, ends in history.closed_windows],
        "rehomed": cards_rehomed_since(history.received_since),
    }
    return [
        (f"CREATE TEMP TABLE am_dirty AS {dirty_sql(history, mine)}", dirty),
        ("ALTER TABLE am_dirty ADD PRIMARY KEY (customer_id)", None),
    ]


def changed_statements(params: Params, history: History) -> list[tuple[str, dict | None]]:
    """What `build_base(changes=False)` leaves out, as statements in order: `am_dirty` (the
    customers whose history changed since the previous run) and their rows of `PurchaseDays`.
    They read neither `am_rc` nor anything else of the run's session, so the nightly run has
    another session run them while this one aggregates the receipts."""
    p = {**params.sql(), "cid": None, "foreign_stores": foreign_store_ids()}
    mine = "AND r.store_id <> ALL(%(foreign_stores)s)" if p["foreign_stores"] else ""
    return [
        *_dirty_statements(p, history, mine),
        ("ANALYZE am_dirty", None),
        *purchase_days_statements(p, None, False, mine),
    ]


# For the final write's joins; `build_base(favourites=False)` leaves it to its caller.
ANALYZE_RECEIPTS = ("ANALYZE am_rc", None)


def favourite_statements(params: Params) -> list[tuple[str, dict | None]]:
    """The statements that create `am_dr` (the dirty customers' receipts) and `am_fav` (their
    favourite categories) from `am_dirty`, in order, with their parameters.

    Statements rather than a function that runs them: the full run has PostgreSQL run them
    while Python fits the models (`crm.pg.background`), a refresh runs them in `build_base`.
    """
    return [
        # The dirty customers' receipts, read once (from the covering index alone) for their
        # favourites and their holiday affinity.
        (
            """
            CREATE TEMP TABLE am_dr AS
            SELECT r.id, r.customer_id, r.purchased_at, r.total
            FROM am_dirty x JOIN sales_receipt r ON r.customer_id = x.customer_id
            """,
            None,
        ),
        ("ANALYZE am_dr", None),
        # Every dirty customer gets a row, '[]' when they have no favourite now.
        (
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
            {"now": params.as_of},
        ),
    ]


def _receipt_aggregates(
    p: dict, customer_id: int | None, one_customer: str, mine_r: str
) -> list[tuple[str, dict | None]]:
    """`am_rc`: one row per buyer with the sums of their receipts and refunds (see
    `build_base`). Creates `am_rf` and returns the statement that creates `am_rc`.

    The refunds are summed per returned receipt first (`am_rf`, a few thousand rows, without
    reading the receipts). The receipts are then aggregated in the order of the covering
    index, customer by customer (a GroupAggregate streaming like the raw scan's), each
    customer's returned receipts picked out by a hashed test against the list of returned
    receipt ids (a constant array, which PostgreSQL hashes; a subquery it would not), and
    only those customers' refunds looked up in `am_rf` by id. Joining `am_rf` to every
    receipt instead, as before, hid the index order from the planner: it hashed two million
    rows into 200,000 groups (a 78 MB hash table) at about twice the raw scan's cost; looking
    the returned receipts' customers up by receipt id costs ~20,000 random heap reads.
    """
    _execute(
        f"""
        CREATE TEMP TABLE am_rf AS
        SELECT d.receipt_id,
               bigint_sum((rl.amount * 100)::bigint) AS refund,
               bigint_sum((rl.margin * 100)::bigint) AS refund_margin,
               coalesce(bigint_sum((rl.amount * 100)::bigint)
                            FILTER (WHERE d.returned_at >= %(ws)s), 0) AS refund_w,
               coalesce(bigint_sum((rl.margin * 100)::bigint)
                            FILTER (WHERE d.returned_at >= %(ws)s), 0) AS refund_margin_w,
               coalesce(bigint_sum((rl.amount * 100)::bigint)
                            FILTER (WHERE d.returned_at >= %(qs)s), 0) AS refund_90
        FROM sales_returnline rl
        JOIN sales_return d ON d.id = rl.return_doc_id
        WHERE d.returned_at <= %(now)s {one_customer}
        GROUP BY d.receipt_id
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )
    _execute("ALTER TABLE am_rf ADD PRIMARY KEY (receipt_id)")
    returned = [row[0] for row in _fetchall("SELECT receipt_id FROM am_rf")]
    statement = (
        f"""
        CREATE TEMP TABLE am_rc AS
        SELECT customer_id, first_at, last_at, receipts, receipts_w, gross, gross_margin,
               gross_w, gross_margin_w, gross_90,
               coalesce(f[1], 0) AS refund,
               coalesce(f[2], 0) AS refund_margin,
               coalesce(f[3], 0) AS refund_w,
               coalesce(f[4], 0) AS refund_margin_w,
               coalesce(f[5], 0) AS refund_90
        FROM (
            SELECT g.*,
                   -- Only for the few customers with a returned receipt.
                   CASE WHEN g.returned IS NOT NULL THEN (
                       SELECT ARRAY[bigint_sum(f.refund), bigint_sum(f.refund_margin),
                                    bigint_sum(f.refund_w), bigint_sum(f.refund_margin_w),
                                    bigint_sum(f.refund_90)]
                       FROM unnest(g.returned) AS u(id)
                       JOIN am_rf f ON f.receipt_id = u.id
                   ) END AS f
            FROM (
                SELECT r.customer_id,
                       min(r.purchased_at) AS first_at,
                       max(r.purchased_at) AS last_at,
                       count(*) AS receipts,
                       count(*) FILTER (WHERE r.purchased_at >= %(ws)s) AS receipts_w,
                       bigint_sum(r.total_minor) AS gross,
                       bigint_sum(r.margin_minor) AS gross_margin,
                       coalesce(bigint_sum(r.total_minor)
                                    FILTER (WHERE r.purchased_at >= %(ws)s), 0) AS gross_w,
                       coalesce(bigint_sum(r.margin_minor)
                                    FILTER (WHERE r.purchased_at >= %(ws)s), 0) AS gross_margin_w,
                       coalesce(bigint_sum(r.total_minor)
                                    FILTER (WHERE r.purchased_at >= %(qs)s), 0) AS gross_90,
                       array_agg(r.id) FILTER (WHERE r.id = ANY(%(returned)s::bigint[]))
                           AS returned
                FROM sales_receipt r
                WHERE r.customer_id IS NOT NULL AND r.purchased_at <= %(now)s
                      {_filter("r.customer_id", customer_id)} {mine_r}
                GROUP BY r.customer_id
            ) g
            -- Not flattened: flattened, each of the five refunds would run the lookup again.
            OFFSET 0
        ) s
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        {**p, "returned": returned},
    )
    return [statement]


def dirty_sql(history: History, mine: str) -> str:
    """The customers whose history changed since the previous run (see `History`): a receipt
    or return received since then or that became visible, a receipt in the run-up to a
    holiday that has passed since, a card that a merge or its undo touched.

    Each part is an index range (`receipt_received`, `receipt_time`, a return's receipt by
    id), so the cost follows the day's receipts, not the history's.
    """
    # Most nights no holiday has passed: no window part then.
    closed = (
        """
        UNION
        SELECT r.customer_id
        FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS w(s, e)
        JOIN sales_receipt r ON r.purchased_at >= w.s AND r.purchased_at < w.e
        WHERE r.customer_id IS NOT NULL AND r.purchased_at <= %(now)s {mine}
        """
        if history.closed_windows
        else ""
    )
    return f"""
        SELECT r.customer_id FROM sales_receipt r
        WHERE r.created_at >= %(since)s
              AND r.customer_id IS NOT NULL AND r.purchased_at <= %(now)s {mine}
        UNION
        SELECT r.customer_id FROM sales_receipt r
        WHERE r.purchased_at > %(visible_after)s
              AND r.customer_id IS NOT NULL AND r.purchased_at <= %(now)s {mine}
        UNION
        SELECT r.customer_id
        FROM sales_return d JOIN sales_receipt r ON r.id = d.receipt_id
        WHERE (d.created_at >= %(since)s OR d.returned_at > %(visible_after)s)
              AND d.returned_at <= %(now)s
              AND r.customer_id IS NOT NULL AND r.purchased_at <= %(now)s {mine}
        {closed.format(mine=mine)}
        -- A merge or its undo moves receipts between cards without changing their dates: the
        -- cards it touched count as changed too.
        UNION SELECT unnest(%(rehomed)s::bigint[])
    """  # noqa: S608 - only fixed SQL fragments are formatted in


def build_purchase_days(p: dict, customer_id: int | None, everyone: bool, mine: str) -> None:
    """Reads `am_dirty` (unless `everyone` or one customer); creates `am_pd` for one customer.

    Purchase days (analytics.purchase_days) for one customer, from their receipts, in `am_pd`;
    or for the base in `PurchaseDays`, after rebuilding its rows for everyone (`everyone`) or
    for the dirty customers. `predictions.fetch_buyers_and_days` reads either beside the
    buyers' money. A buyer without a row (rows lost by hand) is caught by `recompute_all`,
    which then rebuilds them all; a new install has no previous run, so starts with everyone."""
    for sql, sql_params in purchase_days_statements(p, customer_id, everyone, mine):
        _execute(sql, sql_params)


def purchase_days_statements(
    p: dict, customer_id: int | None, everyone: bool, mine: str
) -> list[tuple[str, dict | None]]:
    """The statements of `build_purchase_days`, in order, with their parameters (the nightly
    run has a second session run them, `run.recompute_all`)."""
    zones = purchase_days.store_time_zones()
    p = {**p, **purchase_days.zone_params(zones)}
    if customer_id is not None:
        source = purchase_days.history_sql("", f"AND r.customer_id = %(cid)s {mine}", zones)
        return [(f"CREATE TEMP TABLE {ONE_CUSTOMER_DAYS} AS {source}", p)]
    table = STORED_DAYS
    columns = "(customer_id, days, first_value)"
    if everyone:
        return [
            (f"TRUNCATE {table}", None),
            (f"INSERT INTO {table} {columns} {purchase_days.history_sql('', mine, zones)}", p),
        ]
    scope = "JOIN am_dirty x ON x.customer_id = r.customer_id"
    return [
        (
            f"DELETE FROM {table} WHERE customer_id IN (SELECT customer_id FROM am_dirty)",  # noqa: S608 - a fixed table name
            None,
        ),
        (f"INSERT INTO {table} {columns} {purchase_days.history_sql(scope, mine, zones)}", p),
    ]


# Net money per buyer, in kopecks, from `am_rc` (rc), receipts less refunds: the base rows and the
# buyers' arrays both use these, so the model, the cut points and the metrics agree.
NET_SQL = {
    name: f"coalesce(rc.{gross}, 0) - coalesce(rc.{refund}, 0)"
    for name, gross, refund in (
        ("revenue", "gross", "refund"),
        ("revenue_w", "gross_w", "refund_w"),
        ("revenue_90", "gross_90", "refund_90"),
        ("margin", "gross_margin", "refund_margin"),
        ("margin_w", "gross_margin_w", "refund_margin_w"),
    )
}


def base_sql(base: BaseTables, customer_id: int | None) -> str:
    """One row per customer from the aggregates of `build_base` (`base.receipts`), money in
    kopecks.

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
