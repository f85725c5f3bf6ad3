"""Loyalty benchmark: the till's `loyalty/calculate` under concurrent tills, and bulk receipt
ingestion with the bonus programme on beside the same ingestion with it off.

Makes its own scratch database, a store with a POS key, a catalogue, customers with cards and
a starting balance, starts on loopback the web server `make run` starts (`crm.launcher.
web_command`: gunicorn, sync workers) and a throw-away redis-server. Each till is a thread
sending its next cart as soon as it has the answer, over one HTTP/1.1 connection it keeps as
long as the server does (gunicorn's sync workers close it after each answer, so the till
reconnects, as a real till would). Prints the calculate p50/p99 of 8 concurrent tills, the
CPU a calculation costs in the web workers, in PostgreSQL and in this client (which shares the
machine's cores with them), and the two ingestion rates with their ratio.
The accounts are placed in tiers before anything is measured, by the service the nightly beat
task calls (`tiers_recompute()`, in `loyalty.tasks.nightly_tiers_and_bonuses`), as in a chain
whose programme runs: without it each account's first receipt wrote its first tier.
Targets: calculate p99 < 30 ms; ingestion with loyalty >= 80% of the rate without it.
Small by default; `--full-size` for the sizes the targets are meant for.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import ROOT, free_port, percentile  # noqa: E402
from pos_ingest import (  # noqa: E402
    Poster,
    make_fixtures,
    receipt,
    run_bulk,
    scratch_stack,
    scratch_stack_stop,
    setup_django,
    wait_for,
)

sys.path.insert(0, str(ROOT))
from crm.launcher import web_command  # noqa: E402

DB_NAME = "clientele_bench_loyalty"


ROUNDS = 3


def give_everyone_points(amount: str) -> None:
    """A starting balance for every card holder, as ledger rows (the trigger keeps the sums)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO loyalty_account (customer_id, spend_12m, available, pending, debt,"
            " created_at) SELECT id, 0, 0, 0, 0, now() FROM customers_customer"
            " ON CONFLICT DO NOTHING"
        )
        cursor.execute(
            "INSERT INTO loyalty_entry (account_id, kind, available_delta, pending_delta,"
            " debt_delta, at, created_at, bonus_key, reason, expires_at)"
            " SELECT id, 'adjust', %s, 0, 0, now(), now(), '', 'bench', now() + interval '1 year'"
            " FROM loyalty_account",
            [amount],
        )


def programme_switch(on: bool) -> None:
    from loyalty.models import Programme

    Programme.objects.update_or_create(pk=1, defaults={"is_active": on})


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the gunicorn workers of master `pid`, from /proc: on a
    machine shared with other work it tells what a request costs apart from how long it
    queued."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(c) for c in handle.read().split()]
    except OSError:
        return float("nan")
    return process_cpu_seconds(children)


def process_cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of these processes, from /proc; those gone count nothing."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def database_backends() -> list[int]:
    """Process ids of the PostgreSQL backends serving the scratch database, this process's own
    excepted (the web workers' connections: CONN_MAX_AGE keeps them open between requests)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return [row[0] for row in cursor.fetchall()]


def client_cpu_seconds() -> float:
    """CPU time of this process (all its till threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Till(Poster):
    """A till's HTTP client: keeps its connection while the server keeps it open, and counts
    the connections it had to open (gunicorn's sync workers close one after each answer)."""

    def __init__(self, port: int, key: str):
        super().__init__(port, key)
        self.connects = 0
        self.lock = threading.Lock()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.sock is None:
            with self.lock:
                self.connects += 1
        return super().post(path, body)


def calculate_latencies(poster: Poster, bodies: list[bytes], tills: int) -> list[float]:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    queue = list(bodies)

    def till():
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            started = time.perf_counter()
            status, raw = poster.post("/api/v1/loyalty/calculate/", body)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    failures.append(f"{status} {raw[:200]!r}")

    pool = [threading.Thread(target=till) for _ in range(tills)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} calculations failed, first: {failures[0]}")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true", help="20,000 receipts, 4,000 carts")
    parser.add_argument("--quick", action="store_true", help="the default small size")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.getenv("WEB_CONCURRENCY", "2")),
        help="gunicorn workers (WEB_CONCURRENCY, as for make run)",
    )
    parser.add_argument(
        "--no-nightly",
        action="store_true",
        help="leave the accounts out of tiers (as before the nightly run; for comparison)",
    )
    args = parser.parse_args()
    n_receipts, n_carts = (20_000, 4_000) if args.full_size else (12_000, 400)
    tills, batch, clients = 8, 500, 2
    n_products, n_customers = 2_000, 5_000

    broker, env = scratch_stack(DB_NAME)
    server = None
    try:
        setup_django(env)
        from loyalty.services import tiers_recompute

        _store, _copy, key = make_fixtures(n_products, n_customers)
        give_everyone_points("500")
        # A running chain's accounts were placed last night; `--no-nightly` leaves them unplaced.
        placed = 0 if args.no_nightly else tiers_recompute()
        rng = random.Random(20261204)
        # What an offline till uploads: its receipts of the last hours, a second apart. (Receipts
        # older than the hold period would each add an activation row and read the rules of
        # their own dates: a history import's shape, which earns nothing, not a till's.)
        step = dt.timedelta(seconds=1)
        start = dt.datetime.now(dt.UTC) - step * (2 * n_receipts + 4 * batch + 60)

        def make(i: int) -> dict:
            return receipt(i, n_products, n_customers, rng, start=start, step=step)

        # Two runs of different receipts (the same shape): loyalty off, then on.
        off = [make(i) for i in range(n_receipts)]
        on = [make(n_receipts + i) for i in range(n_receipts)]
        # Two batches each way before measuring, so that neither mode pays the workers' first
        # booking (rules loaded, code paths imported) inside its figure.
        warm = [make(2 * n_receipts + i) for i in range(4 * batch)]
        for index, body in enumerate(on + warm[2 * batch :]):
            if "card" in body and index % 10 == 0:  # some offline redemptions
                body["points_redeemed"] = "10.00"
        carts = []
        for _ in range(n_carts):
            sample = receipt(0, n_products, n_customers, rng)
            carts.append(
                json.dumps(
                    {
                        "card": f"CARD{rng.randrange(n_customers):07d}",
                        "lines": sample["lines"],
                        "points_wanted": "100",
                    }
                ).encode()
            )

        port = free_port()
        os.environ["WEB_CONCURRENCY"] = str(args.workers)
        # The PostgreSQL CPU is read from the backends' /proc: a worker that closed its
        # connection mid-run (after the app's 60 s) took the CPU its backend had spent with it,
        # and a run's PostgreSQL figure came out negative. The workers keep theirs here.
        os.environ.setdefault("DB_CONN_MAX_AGE", "3600")
        server = subprocess.Popen(
            web_command(f"127.0.0.1:{port}"),
            cwd=ROOT,
            env={**os.environ, **env},
            # Its access log is written as `make run` writes it, and thrown away here.
            stdout=subprocess.DEVNULL,
        )
        wait_for(port)
        poster = Till(port, key)
        for body in carts[:40]:  # warm up the workers
            poster.post("/api/v1/loyalty/calculate/", body)

        # One till alone first: the service time of a calculation, without queueing behind
        # the other tills (on a loaded machine it tells the code's cost from the queue's).
        solo = calculate_latencies(poster, carts[:100], 1)
        backends = database_backends()
        cpu = server_cpu_seconds(server.pid)
        db_cpu, own_cpu = process_cpu_seconds(backends), client_cpu_seconds()
        connects, started = poster.connects, time.perf_counter()
        latencies = calculate_latencies(poster, carts, tills)
        connects, calc_seconds = poster.connects - connects, time.perf_counter() - started
        cpu_per_cart = (server_cpu_seconds(server.pid) - cpu) / len(carts)
        db_per_cart = (process_cpu_seconds(backends) - db_cpu) / len(carts)
        client_per_cart = (client_cpu_seconds() - own_cpu) / len(carts)
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000

        def ingest(receipts: list[dict]) -> tuple[float, float, float]:
            """(seconds, web workers' CPU seconds, PostgreSQL's CPU seconds) for these."""
            batches = [receipts[i : i + batch] for i in range(0, len(receipts), batch)]
            bodies = [json.dumps({"receipts": b}).encode() for b in batches]
            pids = database_backends()
            cpu, db_cpu = server_cpu_seconds(server.pid), process_cpu_seconds(pids)
            elapsed = run_bulk(poster, bodies, [len(b) for b in batches], clients)
            return (
                elapsed,
                server_cpu_seconds(server.pid) - cpu,
                process_cpu_seconds(pids) - db_cpu,
            )

        # Off and on alternate in ROUNDS rounds, and each rate is the receipts over the time
        # of all its rounds: a single off-then-on pair of half-second runs swung 75-158% with
        # whatever else the machine did that second, and "on" always ran on the bigger tables.
        for on_now, receipts in ((False, warm[: 2 * batch]), (True, warm[2 * batch :])):
            programme_switch(on_now)
            ingest(receipts)
        # Statistics, as a running chain's tables have them: the seed and the warm-up filled
        # tables the planner last saw empty, and autovacuum may not have looked yet (with its
        # stale estimates the first round "on" ran at a quarter of the later rounds' rate).
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        spent = {False: [0.0, 0.0, 0.0], True: [0.0, 0.0, 0.0]}
        ratios = []
        for round_no in range(ROUNDS):
            rates = {}
            for on_now, receipts in ((False, off), (True, on)):
                # Consecutive slices: a stride would hand every card holder's receipt (every
                # third one, see pos_ingest.receipt) to the first round.
                size = len(receipts) // ROUNDS
                part = receipts[round_no * size : (round_no + 1) * size]
                programme_switch(on_now)
                seconds, cpu_spent, db_spent = ingest(part)
                spent[on_now][0] += seconds
                spent[on_now][1] += cpu_spent
                spent[on_now][2] += db_spent
                rates[on_now] = len(part) / seconds
            ratios.append((rates[True] / rates[False], rates[False], rates[True]))
        rate_off, rate_on = (len(off) / spent[False][0], len(on) / spent[True][0])
        cpu_off, cpu_on = (spent[False][1] * 1000 / len(off), spent[True][1] * 1000 / len(on))
        db_off, db_on = (spent[False][2] * 1000 / len(off), spent[True][2] * 1000 / len(on))

        from loyalty.models import Entry, ReceiptPoints

        booked = ReceiptPoints.objects.count()
        print(
            f"loyalty: {n_carts} carts by {tills} tills, as `make run` serves"
            f" (gunicorn, {args.workers} sync workers), {os.cpu_count()} cores"
        )
        print(f"  loyalty/calculate: p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 < 30 ms)")
        print(f"    {connects} TCP connections opened for {n_carts} calculations")
        print(
            f"    one till alone: p50 {percentile(solo, 0.5) * 1000:.1f} ms;"
            f" CPU per calculation: web workers {cpu_per_cart * 1000:.2f} ms,"
            f" PostgreSQL {db_per_cart * 1000:.2f} ms, bench client {client_per_cart * 1000:.2f} ms"
        )
        # Tills that ask again as soon as they are answered keep every core busy: each waits
        # about tills x (CPU per calculation) / cores, so that product is the p50 to expect.
        total = cpu_per_cart + db_per_cart + client_per_cart
        print(
            f"    {n_carts / calc_seconds:,.0f} calculations/s;"
            f" at {total * 1000:.2f} ms of CPU each,"
            f" {os.cpu_count()} cores serve at most {os.cpu_count() / total:,.0f}/s"
        )
        print(
            f"  bulk ingestion, {n_receipts} receipts x 3 lines each way, batches of {batch},"
            f" off and on alternating in {ROUNDS} rounds;"
            f" {placed} accounts placed in tiers beforehand by the nightly `tiers_recompute()`:"
        )
        print(
            f"    loyalty off: {rate_off:,.0f} receipts/s ({cpu_off:.2f} ms web CPU"
            f" + {db_off:.2f} ms PostgreSQL CPU each)"
        )
        print(
            f"    loyalty on:  {rate_on:,.0f} receipts/s ({cpu_on:.2f} ms web CPU"
            f" + {db_on:.2f} ms PostgreSQL CPU each; "
            f"{booked} receipts booked points, {Entry.objects.count()} ledger rows)"
        )
        print(
            f"    ratio on/off: {rate_on / rate_off:.1%} (target >= 80%);"
            f" by web CPU per receipt: {cpu_off / cpu_on:.1%};"
            f" by web + PostgreSQL CPU: {(cpu_off + db_off) / (cpu_on + db_on):.1%};"
            " per round (off, on receipts/s): "
            + ", ".join(
                f"{r:.0%} ({off_rate:,.0f}, {on_rate:,.0f})" for r, off_rate, on_rate in ratios
            )
        )
    finally:
        scratch_stack_stop(broker, server, DB_NAME)


if __name__ == "__main__":
    main()
