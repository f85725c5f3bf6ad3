"""POS ingestion benchmark: bulk receipts through real HTTP vs PostgreSQL COPY of the same rows.

Creates its own database, migrates it, makes a store, a POS key, a catalogue and customers,
starts gunicorn on loopback and posts batches of 3-line receipts to /api/v1/receipts/bulk/.
Prints receipts/s, the p50/p99 latency of single-receipt posts, the time to COPY the same rows
into the same tables, and the ratio. Run as `.venv/bin/python bench/pos_ingest.py [--quick]`
with DATABASE_URL set (any database on the server; it is only used to reach the server). It
starts its own throw-away redis-server, so no real Celery queue receives its messages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common import scratch_name

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "clientele_bench_pos_ingest"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")


def database_url(name: str, *, scratch: bool = True) -> str:
    # The maintenance database ("postgres") is the server's own: never suffixed.
    name = scratch_name(name) if scratch else name
    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres", scratch=False), autocommit=True) as conn:
        conn.execute(sql)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    import django

    django.setup()


def make_fixtures(n_products: int, n_customers: int):
    from crm.models import Store
    from customers.models import Customer
    from sales.apikeys import pos_key_issue
    from sales.models import Category, Product

    store = Store.objects.create(code="bench-1", name="Bench store")
    copy_store = Store.objects.create(code="bench-copy", name="COPY baseline store")
    key = pos_key_issue(store=store, name="bench till")
    category = Category.objects.create(name="Bench")
    Product.objects.bulk_create(
        Product(
            sku=f"SKU-{i:06d}",
            name=f"Product {i}",
            category=category,
            price=Decimal(100 + i % 900),
            cost=Decimal(60 + i % 500),
        )
        for i in range(n_products)
    )
    Customer.objects.bulk_create(
        Customer(surname=f"Bench{i}", card_number=f"CARD{i:07d}", home_store=store)
        for i in range(n_customers)
    )
    return store, copy_store, key.raw


EPOCH = dt.datetime(2025, 1, 1, 10, tzinfo=dt.UTC)


def receipt(
    i: int,
    n_products: int,
    n_customers: int,
    rng: random.Random,
    *,
    start: dt.datetime = EPOCH,
    step: dt.timedelta = dt.timedelta(minutes=1),
) -> dict:
    lines = []
    total = Decimal(0)
    for _ in range(3):
        price = Decimal(rng.randint(5000, 500000)) / 100
        qty = rng.choice([1, 1, 1, 2, 3])
        discount = (price * qty / 10).quantize(Decimal("0.01")) if rng.random() < 0.3 else 0
        lines.append(
            {
                "sku": f"SKU-{rng.randrange(n_products):06d}",
                "quantity": str(qty),
                "unit_price": str(price),
                "discount": str(discount),
            }
        )
        total += (price * qty - Decimal(discount)).quantize(Decimal("0.01"))
    body = {
        "pos_receipt_id": f"P-{i:08d}",
        "purchased_at": (start + step * i).isoformat(),
        "payment_method": rng.choice(["card", "cash", "sbp"]),
        "lines": lines,
        "total": str(total),
    }
    if i % 3 == 0:  # a third of the sales are to loyalty-card holders
        body["card"] = f"CARD{rng.randrange(n_customers):07d}"
    return body


class Poster:
    def __init__(self, port: int, key: str):
        self.port = port
        self.headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        self.local = threading.local()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("POST", path, body=body, headers=self.headers)
        response = conn.getresponse()
        return response.status, response.read()


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            # Any answer means the app is up (401 without a key); /healthz waits for Celery.
            conn.request("GET", "/api/v1/customers/lookup/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def run_bulk(poster: Poster, bodies: list[bytes], batch_sizes: list[int], threads: int) -> float:
    queue = list(zip(bodies, batch_sizes, strict=True))
    lock = threading.Lock()
    failures: list[str] = []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                body, size = queue.pop(0)
            status, raw = poster.post("/api/v1/receipts/bulk/", body)
            data = json.loads(raw) if status == 200 else {}
            if status != 200 or data.get("created") != size:
                failures.append(f"{status} {raw[:300]!r}")

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed, first: {failures[0]}")
    return elapsed


def run_singles(poster: Poster, bodies: list[bytes]) -> list[float]:
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        status, raw = poster.post("/api/v1/receipts/", body)
        latencies.append(time.perf_counter() - started)
        if status != 201:
            raise RuntimeError(f"single post failed: {status} {raw[:300]!r}")
    return latencies


def copy_same_rows(receipts: list[dict], store_id: int) -> float:
    """Load the same receipts and lines into the same tables with COPY (the raw engine)."""
    import psycopg

    from customers.models import Customer
    from sales.models import Product

    products = dict(Product.objects.values_list("sku", "id"))
    costs = dict(Product.objects.values_list("sku", "cost"))
    cards = dict(
        Customer.objects.filter(card_number__isnull=False).values_list("card_number", "id")
    )
    receipt_buf = io.StringIO()
    line_buf = io.StringIO()
    with psycopg.connect(database_url(DB_NAME)) as conn:
        first_id = conn.execute("SELECT nextval('sales_receipt_id_seq')").fetchone()[0]
        conn.execute("SELECT setval('sales_receipt_id_seq', %s)", [first_id + len(receipts)])
        conn.commit()
        now = dt.datetime.now(dt.UTC).isoformat()
        for offset, r in enumerate(receipts):
            rid = first_id + offset
            customer = cards.get(r.get("card", ""), "\\N")
            receipt_buf.write(
                f"{rid}\t{store_id}\t{customer}\t{r['pos_receipt_id']}\t{r['purchased_at']}\t"
                f"{r['payment_method']}\tstore\t{r['total']}\t\t{now}\n"
            )
            for line_no, line in enumerate(r["lines"], start=1):
                line_buf.write(
                    f"{rid}\t{line_no}\t{products[line['sku']]}\t{line['quantity']}\t"
                    f"{line['unit_price']}\t{line['discount']}\t{costs[line['sku']]}\n"
                )
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy(
                "COPY sales_receipt (id, store_id, customer_id, pos_receipt_id, purchased_at,"
                " payment_method, channel, total, content_hash, created_at) FROM STDIN"
            ) as copy:
                copy.write(receipt_buf.getvalue())
            with cursor.copy(
                "COPY sales_receiptline (receipt_id, line_no, product_id, quantity, unit_price,"
                " discount, unit_cost) FROM STDIN"
            ) as copy:
                copy.write(line_buf.getvalue())
        conn.commit()
        return time.perf_counter() - started


def scratch_stack(db_name: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """A private Redis and a freshly migrated scratch database `db_name`, with the app's env.

    The app publishes a metrics-refresh message per batch; a private, throw-away Redis keeps
    those messages for customers of the scratch database away from any real worker.
    """
    redis_port = free_port()
    broker = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    env = {
        "DATABASE_URL": database_url(db_name),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }
    try:
        admin_sql(f'DROP DATABASE IF EXISTS "{scratch_name(db_name)}" WITH (FORCE)')
        admin_sql(f'CREATE DATABASE "{scratch_name(db_name)}"')
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "-v0"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            stderr=subprocess.DEVNULL,
        )
    except BaseException:
        broker.terminate()
        broker.wait(timeout=30)
        raise
    return broker, env


def scratch_stack_stop(broker: subprocess.Popen, server, db_name: str) -> None:
    """Stop the app server (if started) and the private Redis, and drop the scratch database."""
    if server is not None:
        server.terminate()
        server.wait(timeout=30)
    broker.terminate()
    broker.wait(timeout=30)
    from django.db import connections

    connections.close_all()
    admin_sql(f'DROP DATABASE IF EXISTS "{scratch_name(db_name)}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 receipts, 50 single posts")
    parser.add_argument("--receipts", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args()
    if args.quick:
        args.receipts, args.singles = 2_000, 50

    n_products, n_customers = 2_000, 5_000
    broker, env = scratch_stack(DB_NAME)
    server = None
    try:
        setup_django(env)
        store, copy_store, key = make_fixtures(n_products, n_customers)
        rng = random.Random(20251123)
        receipts = [receipt(i, n_products, n_customers, rng) for i in range(args.receipts)]
        singles = [
            receipt(args.receipts + i, n_products, n_customers, rng) for i in range(args.singles)
        ]
        batches = [receipts[i : i + args.batch] for i in range(0, len(receipts), args.batch)]
        bodies = [json.dumps({"receipts": b}).encode() for b in batches]
        single_bodies = [json.dumps(r).encode() for r in singles]

        port = free_port()
        server = subprocess.Popen(
            [
                GUNICORN,
                "crm.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(args.workers),
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
        )
        wait_for(port)
        poster = Poster(port, key)
        # Warm up both workers (imports, connections) on receipts that are not counted.
        warm = [receipt(10_000_000 + i, n_products, n_customers, rng) for i in range(20)]
        for chunk in (warm[:10], warm[10:]):
            poster.post("/api/v1/receipts/bulk/", json.dumps({"receipts": chunk}).encode())

        elapsed = run_bulk(poster, bodies, [len(b) for b in batches], args.threads)
        rate = len(receipts) / elapsed
        latencies = sorted(run_singles(poster, single_bodies))
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000

        copy_elapsed = copy_same_rows(receipts, copy_store.pk)
        copy_rate = len(receipts) / copy_elapsed

        print(
            f"pos_ingest: {len(receipts)} receipts x 3 lines in batches of {args.batch}, "
            f"{args.threads} clients, gunicorn -w {args.workers}"
        )
        print(f"  bulk HTTP ingestion: {elapsed:.2f} s, {rate:,.0f} receipts/s (target >= 2,000)")
        print(
            f"  single-receipt POST ({len(latencies)} sequential): p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms"
        )
        print(
            f"  PostgreSQL COPY of the same rows: {copy_elapsed:.2f} s, {copy_rate:,.0f} receipts/s"
        )
        print(
            f"  ratio COPY/ours: {copy_rate / rate:.1f}x (ours is {rate / copy_rate:.1%} of COPY)"
        )
    finally:
        scratch_stack_stop(broker, server, DB_NAME)


if __name__ == "__main__":
    main()
