"""Benchmark of the manager's pages against the raw SQL they run.

Seeds its own scratch database with `manage.py seed_demo --customers 100000 --stores 10
--years 3` (about a million receipts; `--quick` seeds 5,000), then serves the pages in-process
through Django's test Client, signed in as an administrator (who sees the whole base, the
slowest case): search by phone typed as people do, by loyalty card, by a misspelt name, the
unfiltered list, a filtered list page deep in the keyset, and the customer card. "Server time"
is the wall time of `Client.get` (URL routing, middleware, session, queries, template), which is
what gunicorn would spend minus the socket. Beside it, every SELECT the page ran, captured and
re-run as plain SQL over psycopg on the same data, is the raw engine's figure. Prints median and
p95 per page and their ratio, and each page's p95 over its own median. Targets: p95 under 150 ms
per page, under 50 ms for an exact phone or card search, and the API list's p95 within 2x its
median.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/pages.py --quick
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from urllib.parse import urlencode

import psycopg
from common import recreate_database, scratch_urls, setup_django

# BENCH_DB_SUFFIX keeps two runs on one server (two checkouts) out of each other's way.
SCRATCH = "clientele_bench_pages" + os.environ.get("BENCH_DB_SUFFIX", "")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def typo(word: str, rng: random.Random) -> str:
    """Swap two neighbouring letters in the middle, as a hurried typist does."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


_LATIN = dict(
    zip(
        "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
        "A B V G D E YO ZH Z I Y K L M N O P R S T U F KH TS CH SH SHCH _ Y _ E YU YA".split(),
        strict=True,
    )
)


def latin(word: str) -> str:
    """A Russian name as typed on a Latin keyboard (Егоров -> Egorov)."""
    return "".join(_LATIN.get(ch, ch) for ch in word.upper()).replace("_", "").capitalize()


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def human_phone(e164: str) -> str:
    digits = e164[2:]
    return f"8 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"


def samples(n: int, rng: random.Random) -> dict[str, list[str]]:
    from customers.models import Customer

    ids = list(
        Customer.objects.exclude(phone="")
        .exclude(card_number=None)
        .order_by("?")
        .values_list("id", "phone", "card_number", "surname", "first_name")[:n]
    )
    rng.shuffle(ids)
    return {
        "search: phone": [
            "/customers/?" + urlencode({"q": human_phone(phone)}) for _, phone, *_ in ids
        ],
        "search: card": ["/customers/?" + urlencode({"q": card}) for _, _, card, *_ in ids],
        "search: name": [
            "/customers/?" + urlencode({"q": f"{typo(surname, rng)} {first}"})
            for *_, surname, first in ids
        ],
        "search: prefix": [
            "/customers/?" + urlencode({"q": surname[:4]}) for *_, surname, _first in ids
        ],
        "search: latin": [
            "/customers/?" + urlencode({"q": f"{latin(surname)} {latin(first)}"})
            for *_, surname, first in ids
        ],
        "search: phone part": [
            "/customers/?" + urlencode({"q": f"{phone[-7:-4]}-{phone[-4:-2]}-{phone[-2:]}"})
            for _, phone, *_ in ids
        ],
        "list": ["/customers/"] * len(ids),
        "list: filtered": ["/customers/?" + urlencode({"stage": "customer", "consent": "sms"})]
        * len(ids),
        "card": [f"/customers/{pk}/" for pk, *_ in ids],
        # The API's first page (masked, 50 rows): its tail is what a serializer per row spiked.
        "api: list": ["/api/v1/customers/"] * len(ids),
    }


def run(args) -> None:
    import warnings

    # WhiteNoise warns that nothing was collected; in-process requests serve no static files.
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django(os.environ["DATABASE_URL"])
    from django.conf import settings

    # In-process requests: no collected static manifest needed, and the test client's host.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from crm import roles
    from customers.models import Customer
    from customers.selectors.listing import ListFilters, customer_page
    from sales.models import Receipt

    call_command("migrate", verbosity=0)
    started = time.monotonic()
    if args.reuse:
        detail = "reused"
    elif args.lean:
        import lean_seed

        steps = lean_seed.seed(args.customers)
        detail = ", ".join(f"{k} {v:.0f} s" for k, v in steps.items())
    else:
        call_command(
            "seed_demo",
            customers=args.customers,
            stores=10,
            years=args.years,
            users=False,
            quiet=True,
        )
        detail = ""
    seeded = time.monotonic() - started
    connection.cursor().execute("ANALYZE")
    print(
        f"seeded {Customer.objects.count():,} customers, {Receipt.objects.count():,} receipts "
        f"in {seeded:.0f} s ({detail or 'seed_demo'}); peak RSS {peak_rss_mb():.0f} MB"
    )

    user, _ = get_user_model().objects.get_or_create(username="bench-admin")
    user.groups.add(Group.objects.get(name=roles.ADMINISTRATOR))
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(user)

    rng = random.Random(7)
    urls = samples(args.samples, rng)
    # Pages deep in the keyset: follow "next" a few times from the unfiltered list.
    deep = []
    page = customer_page(user=user, filters=ListFilters())
    for _ in range(5):
        page = customer_page(user=user, filters=ListFilters(), after=page.next_cursor)
        deep.append(f"/customers/?after={page.next_cursor}")
    urls["list: page 6+"] = (deep * (args.samples // len(deep) + 1))[: args.samples]

    dsn = os.environ["DATABASE_URL"]
    raw = psycopg.connect(dsn, autocommit=True)
    print(
        f"{'page':<22} {'median ms':>10} {'p95 ms':>8} {'raw median':>11} {'raw p95':>8} "
        f"{'ratio p95':>9} {'p95/p50':>7}  queries"
    )
    failures = []
    manager = get_user_model().objects.filter(username="bench-manager-0").first()
    runs = [(name, client, page_urls) for name, page_urls in urls.items()]
    if manager is not None:
        # A store manager's search is scoped to their store (the lean seed makes them).
        manager_client = Client(HTTP_ACCEPT_LANGUAGE="ru")
        manager_client.force_login(manager)
        runs += [
            (f"{name} (mgr)", manager_client, urls[name])
            for name in ("search: name", "search: prefix", "search: latin")
        ]
    for name, client, page_urls in runs:  # noqa: B020 - each run names its own client
        ours, theirs, counts = [], [], []
        # Search is served as you type: the htmx request that returns the results fragment.
        headers = (
            {"HX-Request": "true", "HX-Target": "results"} if name.startswith("search") else {}
        )
        for url in page_urls:
            client.get(url, headers=headers)  # warm the connection and the code path
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url, headers=headers).status_code == 200, url
            selects = [
                q["sql"]
                for q in captured.captured_queries
                if q["sql"].lstrip().startswith("SELECT")
            ]
            counts.append(len(captured.captured_queries))
            t0 = time.perf_counter()
            client.get(url, headers=headers)
            ours.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            for sql in selects:
                raw.execute(sql).fetchall()
            theirs.append((time.perf_counter() - t0) * 1000)
        p95 = percentile(ours, 0.95)
        raw_p95 = percentile(theirs, 0.95)
        print(
            f"{name:<22} {statistics.median(ours):>10.1f} {p95:>8.1f} "
            f"{statistics.median(theirs):>11.1f} {raw_p95:>8.1f} {p95 / raw_p95:>8.1f}x  "
            f"{p95 / statistics.median(ours):>6.1f}x  {max(counts)}"
        )
        target = 50 if name in {"search: phone", "search: card"} else 150
        if p95 > target:
            failures.append(f"{name}: p95 {p95:.0f} ms > {target} ms")
        if name.startswith("api") and p95 > 2 * statistics.median(ours):
            failures.append(f"{name}: p95 {p95:.0f} ms > 2x its median")
    raw.close()
    searches = [u for k in ("search: name", "search: prefix", "search: latin") for u in urls[k]]
    rate, p50, p95 = concurrent_searches(user, searches, args.users, args.seconds)
    print(
        f"{args.users} concurrent users, name/prefix/Latin searches for {args.seconds} s: "
        f"{rate:.1f} searches/s (p50 {p50:.0f} ms, p95 {p95:.0f} ms each)"
    )
    if failures:
        print("over target: " + "; ".join(failures))
    else:
        print("all pages within target (p95 < 150 ms; exact phone/card < 50 ms)")


def concurrent_searches(user, urls: list[str], users: int, seconds: float):
    """Searches per second that `users` threads (each its own session and database connection)
    get in this process, and the p50/p95 of one search while they compete."""
    import threading

    from django.db import connection
    from django.test import Client

    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    times: list[float] = []

    def worker(offset: int) -> None:
        client = Client(HTTP_ACCEPT_LANGUAGE="ru")
        client.force_login(user)
        headers = {"HX-Request": "true", "HX-Target": "results"}
        i = offset
        try:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                assert client.get(urls[i % len(urls)], headers=headers).status_code == 200
                with lock:
                    times.append((time.perf_counter() - t0) * 1000)
                i += 7
        finally:
            connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k * 13,)) for k in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return len(times) / elapsed, statistics.median(times), percentile(times, 0.95)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 customers, 20 samples")
    parser.add_argument(
        "--full-size",
        action="store_true",
        help="1,000,000 customers (the search target is p95 < 150 ms at this size)",
    )
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument(
        "--years",
        type=int,
        default=3,
        help="years of purchase history to seed (search pages need none beyond 1)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the scratch database a --keep run left, without seeding it again",
    )
    parser.add_argument(
        "--lean",
        action="store_true",
        help="seed cards, phones, stores and managers only, by COPY (bench/lean_seed.py); "
        "--full-size implies it",
    )
    parser.add_argument(
        "--users", type=int, default=8, help="concurrent users for the searches/s figure"
    )
    parser.add_argument("--seconds", type=float, default=20, help="length of the concurrent run")
    args = parser.parse_args()
    if args.full_size:
        args.customers = args.customers or 1_000_000
        args.lean = True
    args.customers = args.customers or (5_000 if args.quick else 100_000)
    args.samples = args.samples or (20 if args.quick else 60)
    admin_url, url = scratch_urls(SCRATCH)
    if not args.reuse:
        recreate_database(admin_url, SCRATCH)
    os.environ["DATABASE_URL"] = url
    # The bench measures pages, not the static manifest; DEBUG stays off (no query logging).
    os.environ.setdefault("DEBUG", "0")
    try:
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            recreate_database(admin_url, SCRATCH, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
