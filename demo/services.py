"""`demo_seed`: build a realistic, reproducible demo base of a Russian store chain.

The same arguments (seed and "today" included) always give the same rows: every random draw
comes from `random.Random(seed)` or `numpy.random.default_rng(seed)`, and every date hangs off
`today`. Bulk rows go in with PostgreSQL COPY inside one transaction, so a failure leaves the
base as it was.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import transaction

from crm.models import Store
from crm.pg.bulk import analyze, bulk_load, reserve_ids
from customers.duplicates.finder import duplicates_find
from customers.models import (
    ConsentEvent,
    Contact,
    Customer,
    CustomerPhone,
    ImportantDate,
    ProcessingConsent,
)
from loyalty.demo import demo_history as loyalty_demo_history
from sales.models import Category, Product, Receipt, ReceiptLine, Return, ReturnLine

from . import catalog as cat
from .contacts import plan_contacts
from .people import describe_people, plan_people
from .purchases import Receipts, plan_returns, simulate
from .tables import lock_demo_tables, truncate_demo_tables
from .users import DEMO_LOGINS, DEMO_PASSWORD, demo_users_ensure
from .writers import (
    write_card_details,
    write_contacts,
    write_customers,
    write_receipts,
    write_returns,
)

LAPSED_AFTER_DAYS = 365
BULK_MODELS = [
    Customer,
    Customer.tags.through,
    CustomerPhone,
    ImportantDate,
    ConsentEvent,
    ProcessingConsent,
    Receipt,
    ReceiptLine,
    Return,
    ReturnLine,
    Contact,
]


class DemoBaseNotEmpty(Exception):
    """The database already holds customers or sales, and no reset was asked for."""


@dataclass
class SeedSummary:
    counts: dict[str, int] = field(default_factory=dict)
    revenue: Decimal = Decimal(0)
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str = ""
    seconds: float = 0.0


class _Progress:
    def __init__(self, log: Callable[[str], None] | None):
        self.log = log
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if self.log:
            self.log(f"[{time.monotonic() - self.started:7.1f}s] {message}")


def window_start(today: dt.date, years: int) -> dt.date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def _existing_rows() -> dict[str, int]:
    found = {
        "customers": Customer.objects.count(),
        "receipts": Receipt.objects.count(),
        "stores": Store.objects.count(),
        "products": Product.objects.count(),
        "categories": Category.objects.count(),
    }
    return {name: count for name, count in found.items() if count}


@transaction.atomic
def demo_seed(
    *,
    customers: int = 2000,
    stores: int = 5,
    years: int = 3,
    seed: int = 42,
    today: dt.date,
    users: bool = True,
    reset: bool = False,
    log: Callable[[str], None] | None = None,
) -> SeedSummary:
    """Fill an empty base (or, with `reset`, an emptied one) with the demo chain.

    Raises DemoBaseNotEmpty if customers, stores or sales exist and `reset` is false.
    """
    if customers < 1 or stores < 1 or not 1 <= years <= 20:
        raise ValueError("customers and stores must be positive, years between 1 and 20")
    progress = _Progress(log)
    if reset:
        truncate_demo_tables()
        progress("reset: customers, sales and the contact log emptied")
    else:
        lock_demo_tables()
        found = _existing_rows()
        if found:
            raise DemoBaseNotEmpty(", ".join(f"{n} {name}" for name, n in found.items()))

    rnd = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    rng = np.random.default_rng(seed)
    start = window_start(today, years)
    days = (today - start).days
    tz = ZoneInfo(settings.TIME_ZONE)
    now = dt.datetime.combine(today, dt.time(0), tz)  # all history ends before today begins
    summary = SeedSummary(password=DEMO_PASSWORD if users else "")

    specs = cat.store_specs(stores)
    store_rows = cat.create_stores(specs, opened_on=start - dt.timedelta(days=365 * 2))
    store_ids = [s.pk for s in store_rows]
    catalog = cat.create_catalog(rnd)
    channel_ids = [c.pk for c in cat.create_acquisition_channels()]
    tag_ids = [t.pk for t in cat.create_tags()]
    cat.create_custom_fields()
    staff_ids: list[int] = []
    if users:
        demo_users = demo_users_ensure(first_store=store_rows[0])
        staff_ids = [u.pk for u in demo_users]
        summary.logins = [(login.username, login.role) for login in DEMO_LOGINS]
    progress(
        f"reference data: {len(store_rows)} stores, {len(catalog.product_ids)} products, "
        f"{len(channel_ids)} acquisition channels, {len(staff_ids)} demo users"
    )

    people = plan_people(rng=rng, count=customers, stores=specs, days=days)
    describe_people(people=people, rng=rng, rnd=rnd, stores=specs, today=today)
    progress(f"customers planned: {customers:,}")
    receipts = simulate(
        rng=rng, people=people, stores=specs, catalog=catalog, start=start, days=days, years=years
    )
    returns = plan_returns(rng, receipts, days)
    progress(
        f"purchases simulated: {receipts.count:,} receipts, {len(receipts.product):,} lines, "
        f"{len(returns.receipt):,} returns"
    )

    with bulk_load(BULK_MODELS):
        first_customer = reserve_ids(Customer, customers)
        registered, stage = _registration_and_stage(rng, people, receipts, start, days)
        registered_text = [f"{s}+00" for s in np.datetime_as_string(registered, unit="s").tolist()]
        write_customers(
            rnd=rnd,
            people=people,
            first_id=first_customer,
            registered_text=registered_text,
            stage=stage,
            store_ids=store_ids,
            channel_ids=channel_ids,
            staff_ids=staff_ids,
        )
        registered_dt = [
            d.replace(tzinfo=dt.UTC) for d in registered.astype("datetime64[us]").tolist()
        ]
        counts = write_card_details(
            rnd=rnd,
            people=people,
            first_id=first_customer,
            registered=registered_dt,
            tag_ids=tag_ids,
            now=now,
        )
        progress(
            f"customers written: {customers:,} ({int((stage == 0).sum()):,} leads, "
            f"{int((stage == 2).sum()):,} lapsed), {counts['phones']:,} phones, "
            f"{counts['consent events']:,} consent events"
        )

        first_receipt = reserve_ids(Receipt, receipts.count)
        first_line = reserve_ids(ReceiptLine, len(receipts.product))
        write_receipts(
            receipts=receipts,
            first_receipt=first_receipt,
            first_line=first_line,
            first_customer=first_customer,
            store_ids=store_ids,
            catalog=catalog,
            progress=progress,
        )
        returned_lines = write_returns(
            returns=returns,
            receipts=receipts,
            first_receipt=first_receipt,
            first_line=first_line,
            store_ids=store_ids,
            catalog=catalog,
        )
        progress(f"returns written: {len(returns.receipt):,} ({returned_lines:,} lines)")

        contacts = plan_contacts(
            rnd=rnd,
            is_lead=people.is_lead.tolist(),
            registered=registered_dt,
            in_first_store=(people.home_store == 0).tolist(),
            staff_count=len(staff_ids),
            today=today,
            now=now,
        )
        write_contacts(
            contacts=contacts,
            first_customer=first_customer,
            home_store=people.home_store.tolist(),
            store_ids=store_ids,
            staff_ids=staff_ids,
        )
        progress(f"contact log written: {len(contacts):,} entries")
    progress("indexes rebuilt, foreign keys checked")
    # The demo app sits above every app, so it asks each for its own demo history directly.
    loyalty_demo_history(today=today, log=progress)
    # What the nightly finder would list by the first morning (people registered twice).
    pairs = sum(duplicates_find().values())
    progress(f"possible duplicates found: {pairs:,} pairs")

    analyze(BULK_MODELS)
    summary.counts = {
        "stores": len(store_rows),
        "products": len(catalog.product_ids),
        "customers": customers,
        "leads": int((stage == 0).sum()),
        "lapsed": int((stage == 2).sum()),
        **counts,
        "receipts": receipts.count,
        "receipt lines": len(receipts.product),
        "returns": len(returns.receipt),
        "contacts": len(contacts),
    }
    summary.revenue = Decimal(int(receipts.total.sum())) / 100
    summary.seconds = time.monotonic() - progress.started
    progress("done")
    return summary


def _registration_and_stage(
    rng: np.random.Generator, people, receipts: Receipts, start: dt.date, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """When each card was created, and its lifecycle stage: 0 lead, 1 customer, 2 lapsed."""
    n = people.count
    midnight = np.datetime64(start, "s")
    # Leads: a daytime contact on their day; old cards: up to three years before the window.
    registered = midnight + people.first_day * 86400 + rng.integers(7 * 3600, 19 * 3600, size=n)
    before = midnight - rng.integers(86400, 3 * 365 * 86400, size=n)
    registered = np.where(people.pre_window, before, registered)
    known = receipts.customer >= 0
    buyers, first_index = np.unique(receipts.customer[known], return_index=True)
    first_ts = receipts.ts[known][first_index]
    new = ~people.pre_window[buyers]
    # A new customer's card is issued at the till a few minutes before the first receipt.
    registered[buyers[new]] = first_ts[new] - rng.integers(60, 900, size=int(new.sum()))

    last_day = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_day, receipts.customer[known], receipts.day[known])
    stage = np.where(last_day < 0, 0, np.where(days - last_day > LAPSED_AFTER_DAYS, 2, 1))
    return registered, stage
