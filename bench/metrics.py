"""Benchmark of the full metrics recompute against one raw SQL aggregate scan of the receipts.

Seeds its own scratch database with `generate_series` (default 200,000 customers and
2,000,000 receipts with about 1.5 lines each, 1% of receipts partly returned; the issue's
1,000,000 / 10,000,000 does not fit this 2-core machine in the time, `--full-size` asks for it),
runs the full recompute (aggregates, model fit, ranking, write, holiday affinity) three times:
the first run from scratch, then two nightly runs, each after a day of business (the daily
share of receipts, 1/1095 of the history, and 1% of that as returns; see `add_a_day`). It
prints each time beside `SELECT customer_id, count(*), sum(total), max(purchased_at) FROM
sales_receipt GROUP BY 1` on the same data, the ratios (target for the nightly run: within 3x)
and the model fit time (target: under 30 s), and the backtest's share of the nightly run
(its time is part of the run's). A nightly run recomputes every metric of every
customer from the receipts; favourite categories and holiday affinity only for customers whose
history changed (`analytics.metrics.History`); the first run shows what that saves.
`--quick` runs 20,000 / 200,000. `--keep` leaves the database for inspection; `--reuse`
measures the database a `--keep` run left (of the same size), without seeding it again or
running the first run, each night as if the last run had been a day before (its changed
customers are its own day's; a fresh run's second night also counts the first night's), and
`--nights N` runs N nightly runs instead of 2.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/metrics.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from common import recreate_database, scratch_urls, setup_django

SCRATCH = os.environ.get("BENCH_SCRATCH_DB", "clientele_bench_metrics")
# A pseudo-random age within three years, from the row number alone (so created_at can repeat it).
AGE = "make_interval(secs => mod(g * 2654435761, 1095 * 86400))"
RAW_SCAN = (
    "SELECT customer_id, count(*), sum(total), max(purchased_at) FROM sales_receipt GROUP BY 1"
)


def columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND column_name <> 'id' AND is_generated = 'NEVER' ORDER BY ordinal_position",
        [table],
    )
    return [r[0] for r in cursor.fetchall()]


def clone(
    cursor, table: str, template_id: int, series: str, overrides: dict[str, str], params: dict
) -> None:
    """INSERT ... SELECT a template row once per `series` value, overriding some columns.

    Copying a template keeps the seed working whatever columns other apps add to the table.
    """
    cols = columns(cursor, table)
    exprs = [overrides.get(c, f"t.{c}") for c in cols]
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) "
        f"SELECT {', '.join(exprs)} FROM {table} t, {series} "
        f"WHERE t.id = {template_id}",
        params,
    )


def drop_plain_indexes(cursor, tables: tuple[str, ...]) -> list[str]:
    """Drop the indexes no constraint needs and return their definitions to rebuild later.

    Building an index once over two million rows is far cheaper than updating it per row.
    """
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        [list(tables)],
    )
    found = cursor.fetchall()
    for name, _definition in found:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _name, definition in found]


def seed(customers: int, receipts: int) -> None:
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from crm.models import Store
    from customers.models import Customer
    from sales.models import Category, Product, Receipt, ReceiptLine

    stores = [Store.objects.create(code=f"s{i}", name=f"Store {i}") for i in range(10)]
    categories = [Category.objects.create(name=f"Category {i}") for i in range(20)]
    Product.objects.bulk_create(
        Product(sku=f"P{i:05d}", name=f"Product {i}", category=categories[i % 20], price=100)
        for i in range(1000)
    )
    template = Customer.objects.create(surname="Bench", home_store=stores[0])
    receipt = Receipt.objects.create(
        store=stores[0],
        customer=template,
        pos_receipt_id="template",
        purchased_at=timezone.now(),
        total=Decimal("1"),
    )
    ReceiptLine.objects.create(
        receipt=receipt,
        line_no=1,
        product=Product.objects.first(),
        quantity=1,
        unit_price=1,
        unit_cost=0,
    )
    now = timezone.now()
    with connection.cursor() as cursor:
        # Seeding only: the generated rows are consistent by construction, so the per-row
        # foreign-key triggers are skipped (superuser setting, reset below).
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        indexes = drop_plain_indexes(
            cursor, ("customers_customer", "sales_receipt", "sales_receiptline")
        )
        cursor.execute("SELECT min(id), max(id) FROM sales_store")
        store0, store_n = cursor.fetchone()
        cursor.execute("SELECT min(id) FROM sales_product")
        product0 = cursor.fetchone()[0]
        clone(
            cursor,
            "customers_customer",
            template.pk,
            f"generate_series(1::bigint, {customers - 1}) g",
            {
                "surname": "'Bench ' || g",
                "email": "'c' || g || '@example.com'",
                "home_store_id": f"{store0} + mod(g, {store_n - store0 + 1})",
                "created_at": "%(now)s - make_interval(days => mod(g, 900)::int)",
            },
            {"now": now},
        )
        cursor.execute("SELECT min(id), max(id) FROM customers_customer")
        c0, cn = cursor.fetchone()
        span = cn - c0 + 1
        # Skewed: a few customers buy often, many rarely; times spread over three years, so
        # the model sees newcomers, regulars and customers who drifted away.
        price1 = "(100 + mod(g * 7919, 4900))"
        price2 = "(50 + mod(g * 104729, 2950))"
        clone(
            cursor,
            "sales_receipt",
            receipt.pk,
            f"generate_series(1::bigint, {receipts}) g",
            {
                "store_id": f"{store0} + mod(g, {store_n - store0 + 1})",
                "customer_id": f"{c0} + floor({span} * power(random(), 1.7))::bigint",
                "pos_receipt_id": "'b' || g",
                "purchased_at": f"%(now)s - {AGE}",
                # Tills send receipts as they print them: received a minute after purchase.
                "created_at": f"%(now)s - {AGE} + interval '1 minute'",
                "total": f"{price1} + CASE WHEN mod(g, 2) = 0 THEN {price2} ELSE 0 END",
                # The triggers that keep it are off while seeding: the lines' margins below.
                "margin": f"{price1} * 0.4 + CASE WHEN mod(g, 2) = 0 THEN {price2} * 0.45 "
                "ELSE 0 END",
            },
            {"now": now},
        )
        cursor.execute("DELETE FROM sales_receiptline")
        cursor.execute("DELETE FROM sales_receipt WHERE id = %s", [receipt.pk])
        cursor.execute("SELECT min(id) FROM sales_receipt")
        r0 = cursor.fetchone()[0]
        cursor.execute(
            f"""
            INSERT INTO sales_receiptline
                (receipt_id, line_no, product_id, quantity, unit_price, discount, unit_cost)
            SELECT r.id, 1, {product0} + (r.id * 31) % 1000, 1, {price1}, 0, {price1} * 0.6
            FROM sales_receipt r, LATERAL (SELECT r.id - {r0} + 1 AS g) s
            UNION ALL
            SELECT r.id, 2, {product0} + (r.id * 17) % 1000, 1, {price2}, 0, {price2} * 0.55
            FROM sales_receipt r, LATERAL (SELECT r.id - {r0} + 1 AS g) s
            WHERE g % 2 = 0
            """
        )
        cursor.execute(
            """
            INSERT INTO sales_return (store_id, receipt_id, pos_return_id, returned_at,
                                      content_hash, created_at)
            SELECT store_id, id, 'ret' || id, purchased_at + interval '3 days', '',
                   purchased_at + interval '3 days'
            FROM sales_receipt WHERE id % 100 = 0
            """
        )
        cursor.execute(
            """
            INSERT INTO sales_returnline (return_doc_id, receipt_line_id, quantity, amount, margin)
            SELECT d.id, l.id, 1, l.amount, l.margin
            FROM sales_return d JOIN sales_receiptline l ON l.receipt_id = d.receipt_id
            WHERE l.line_no = 1
            """
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute(
            "SELECT count(*) FROM (SELECT r.margin, sum(l.margin) AS lines FROM sales_receipt r "
            "JOIN sales_receiptline l ON l.receipt_id = r.id WHERE r.id % 997 = 0 "
            "GROUP BY r.id) s WHERE margin <> lines"
        )
        assert cursor.fetchone()[0] == 0, "seeded receipt margins differ from their lines"
        for definition in indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE")


def add_a_day(customers: int, receipts: int) -> int:
    """A day of business after the first run: the chain's daily share of receipts (written the
    normal way, triggers on), bought by the same skewed customers, and 1% of them as returns
    of older receipts. Returns how many receipts were added."""
    from django.db import connection
    from django.utils import timezone

    day = max(1, receipts // 1095)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM customers_customer")
        c0, cn = cursor.fetchone()
        cursor.execute("SELECT max(id) FROM sales_receipt")
        last = cursor.fetchone()[0]
        clone(
            cursor,
            "sales_receipt",
            last,
            f"generate_series(1::bigint, {day}) g",
            {
                "customer_id": f"{c0} + floor({cn - c0 + 1} * power(random(), 1.7))::bigint",
                "pos_receipt_id": f"'day{last}-' || g",
                "purchased_at": "%(now)s - make_interval(secs => random() * 86400)",
                "created_at": "%(now)s",
                "total": "(100 + mod(g * 7919, 4900))",
                "margin": "0",
            },
            {"now": now},
        )
        cursor.execute(
            """
            INSERT INTO sales_receiptline
                (receipt_id, line_no, product_id, quantity, unit_price, discount, unit_cost)
            SELECT r.id, 1, (SELECT min(id) FROM sales_product) + (r.id * 31) %% 1000, 1,
                   r.total, 0, r.total * 0.6
            FROM sales_receipt r WHERE r.id > %s
            """,
            [last],
        )
        cursor.execute(
            """
            WITH picked AS (
                SELECT r.id, r.store_id FROM sales_receipt r
                WHERE r.id %% 100 = 1 AND r.id <= %s ORDER BY r.id DESC LIMIT %s
            ), docs AS (
                INSERT INTO sales_return (store_id, receipt_id, pos_return_id, returned_at,
                                          content_hash, created_at)
                SELECT store_id, id, 'day' || id, %s, '', %s FROM picked
                RETURNING id, receipt_id
            )
            INSERT INTO sales_returnline (return_doc_id, receipt_line_id, quantity, amount, margin)
            SELECT d.id, l.id, 1, l.amount, l.margin
            FROM docs d JOIN sales_receiptline l ON l.receipt_id = d.receipt_id
            WHERE l.line_no = 1
            """,
            [last, max(1, day // 100), now, now],
        )
    return day


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 customers / 200,000 receipts")
    parser.add_argument("--full-size", action="store_true", help="1,000,000 / 10,000,000")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the scratch database a --keep run left (implies --keep), without "
        "seeding it again or the first run",
    )
    parser.add_argument("--nights", type=int, default=2, help="nightly runs (default 2)")
    args = parser.parse_args()
    if args.nights < 1:
        parser.error("--nights must be at least 1")
    args.keep = args.keep or args.reuse
    customers, receipts = (20_000, 200_000) if args.quick else (200_000, 2_000_000)
    if args.full_size:
        customers, receipts = 1_000_000, 10_000_000
    admin_url, url = scratch_urls(SCRATCH)
    if not args.reuse:
        recreate_database(admin_url, SCRATCH)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from analytics import services
    from analytics.metrics.history import HISTORY_OVERLAP
    from analytics.models import ClassThresholds, ClvModelFit, RunStatus

    try:
        call_command("migrate", verbosity=0)
        if not args.full_size and not args.quick:
            print(
                "size: 200,000 customers / 2,000,000 receipts (the issue's 1,000,000 / "
                "10,000,000 does not fit this machine in the time; --full-size runs it)"
            )
        else:
            print(f"size: {customers:,} customers / {receipts:,} receipts")
        if args.reuse:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM sales_receipt")
                found = cursor.fetchone()[0]
            if found < receipts:
                raise SystemExit(
                    f"--reuse: the scratch database holds {found:,} receipts, not the "
                    f"{receipts:,} of this size: run once with --keep first"
                )
            print(f"reused the kept database ({found:,} receipts)")
        else:
            seed_time = timed(lambda: seed(customers, receipts))
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM sales_receiptline")
                lines = cursor.fetchone()[0]
            print(f"seeded in {seed_time:.1f} s ({lines:,} receipt lines)")

        from analytics.metrics import SESSION_RESET, session_settings

        def raw() -> None:
            with connection.cursor() as cursor:
                for setting in session_settings():  # the same session settings as the recompute
                    cursor.execute(setting)
                cursor.execute(RAW_SCAN)
                cursor.fetchall()
                cursor.execute(SESSION_RESET)

        raw()  # warm the cache for both sides alike

        def measured(label: str) -> tuple[str, float, float, object, object]:
            # Raw scans right before and after, so both sides see the same machine load.
            before = timed(raw, repeat=2)
            started = time.perf_counter()
            run = services.metrics_recompute_all()
            seconds = time.perf_counter() - started
            assert run.status == RunStatus.DONE, run.error
            after = timed(raw, repeat=2)
            return label, seconds, min(before, after), run, ClvModelFit.objects.first()

        # The first run has no previous one: every favourite and holiday affinity comes from
        # the lines. Each nightly run follows a day of new receipts and returns.
        results = [] if args.reuse else [measured("first run, from scratch")]
        for night in range(1, args.nights + 1):
            if args.reuse:
                # The kept database has the receipts of earlier runs within the history's
                # overlap hour: each night starts the watermark afresh, so that its changed
                # customers are those of its own day, as on a real night a day after the last.
                now = timezone.now()
                ClassThresholds.objects.filter(pk=1).update(
                    history_started_at=now + HISTORY_OVERLAP, history_as_of=now
                )
            added = add_a_day(customers, receipts)
            results.append(measured(f"nightly run {night} (after {added:,} new receipts)"))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT customer_id FROM analytics_customermetrics WHERE receipts > 3 LIMIT 1"
            )
            one = cursor.fetchone()[0]
        single = timed(lambda: services.customer_metrics_refresh(customer_id=one), repeat=3)
        nightly = [item for item in results if item[0].startswith("nightly")]
        _label, best, raw_time, run, fit = min(nightly, key=lambda item: item[1] / item[2])
        sql_only = best - fit.seconds
        print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        with connection.cursor() as cursor:
            cursor.execute("SELECT split_part(version(), ' on ', 1)")
            server = cursor.fetchone()[0]
        settings = connection.settings_dict
        # `make bench` without DATABASE_URL runs on the embedded server `crm.launcher` starts.
        print(f"server: {server} at {settings['HOST']}:{settings['PORT']}")
        for label, seconds, raw_seconds, _run, _fit in results:
            print(
                f"{label}: full recompute {seconds:.2f} s, raw aggregate scan "
                f"{raw_seconds:.2f} s, ratio {seconds / raw_seconds:.1f}x"
            )
        print(f"rows: {run.customers:,} customers")
        print(
            f"ratio nightly full recompute / raw scan: {best:.2f} s / {raw_time:.2f} s = "
            f"{best / raw_time:.1f}x (target 3x)"
        )
        print(
            f"nightly full recompute without the model fit: {sql_only:.2f} s, "
            f"ratio {sql_only / raw_time:.1f}x"
        )
        print(
            f"model fit (BG/NBD + Gamma-Gamma, {fit.customers:,} customers): {fit.seconds:.1f} s "
            f"(target < 30 s) {fit.message}"
        )
        print(
            f"fit: r={fit.r:.3g} alpha={fit.alpha:.3g} a={fit.a:.3g} b={fit.b:.3g} "
            f"p={fit.p:.3g} q={fit.q:.3g} gamma={fit.gamma:.3g}"
            if fit.usable_bgnbd and fit.usable_gamma_gamma
            else "fit: degenerate"
        )
        from analytics.clv import Note

        backtest_seconds = (fit.backtest or {}).get("seconds", 0.0)
        error = 100 * (fit.backtest.get("error") or 0)
        print(
            f"backtest (refit on the history {fit.backtest.get('weeks')} weeks ago and "
            f"predictions): {backtest_seconds:.2f} s, {100 * backtest_seconds / best:.1f}% of "
            f"the nightly run (included in its time); error {error:+.1f}%"
        )
        from django.utils import translation

        with translation.override("en"):
            reasons = " ".join(Note.translate(note) for note in fit.gate_notes)
        print(f"model published: {'yes' if fit.published else 'no'} {reasons}")
        print(f"one-customer refresh: {single * 1000:.0f} ms")
    finally:
        connection.close()
        if not args.keep:
            recreate_database(admin_url, SCRATCH, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
