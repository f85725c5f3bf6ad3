"""The purchase simulation: receipts, their lines and returns, as numpy arrays.

A customer buys as BG/NBD describes (Fader, Hardie & Lee, 2005): from their first purchase,
at their own Poisson rate (Gamma across customers, so the top fifth brings most of the
revenue), and after each repeat purchase leaves for good with their own chance (Beta across
customers). The clock runs in "business time", the seasonal calendar's cumulative weight
(December, 23 February, 8 March, summer), so purchases crowd into busy weeks. Some customers
also buy gifts in the ten days before 8 March or 23 February every year while they still
shop with us. Spend per visit differs by customer through basket size and price level.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from .catalog import (
    APPLIANCES,
    COSMETICS,
    ELECTRONICS,
    GIFTS,
    GROCERIES,
    TOP_CATEGORIES,
    Catalog,
    StoreSpec,
)
from .people import FEMALE, People

ANONYMOUS_SHARE = 0.12
RETURN_SHARE = 0.025
REGULAR, GIFT_MARCH_8, GIFT_FEB_23, ANONYMOUS = 0, 1, 2, 3

PAYMENT_METHODS = ["card", "sbp", "cash", "bonus", "mixed"]
PAYMENT_SHARES = [0.63, 0.13, 0.16, 0.03, 0.05]
CHANNELS = ["store", "online", "phone"]
CHANNEL_SHARES = [0.92, 0.06, 0.02]


def day_weights(start: dt.date, days: int) -> np.ndarray:
    """Relative number of purchases on each day of the window."""
    weights = np.empty(days)
    for d in range(days):
        day = start + dt.timedelta(days=d)
        w = {4: 1.1, 5: 1.3, 6: 1.25}.get(day.weekday(), 1.0)
        m, dd = day.month, day.day
        if m == 12:
            w *= 2.8 if dd >= 25 else 2.2 if dd >= 15 else 1.4
        elif m == 1:
            w *= 0.3 if dd <= 2 else 0.9 if dd <= 8 else 0.75
        elif m == 2 and 17 <= dd <= 22:
            w *= 1.6
        elif m == 2 and dd == 14:
            w *= 1.4
        elif m == 3 and dd <= 7:
            w *= 1.9
        elif m in (6, 7, 8):
            w *= 1.25 if not (m == 8 and dd >= 20) else 1.4  # summer, then back to school
        elif m == 11 and dd >= 22:
            w *= 1.5  # "black Friday" week
        w *= 1 + 0.08 * d / 365  # the chain grows
        weights[d] = w
    return weights


@dataclass
class Receipts:
    """Receipts in time order (index r has id `first_id + r`) and their lines."""

    customer: np.ndarray  # customer index or -1
    store: np.ndarray
    day: np.ndarray
    ts: np.ndarray  # datetime64[s], UTC
    kind: np.ndarray
    payment: np.ndarray
    channel: np.ndarray
    pos_no: np.ndarray  # running number per store
    total: np.ndarray  # kopecks
    line_start: np.ndarray  # index of the first line of each receipt
    line_count: np.ndarray
    # Lines, grouped by receipt in receipt order
    line_receipt: np.ndarray
    line_no: np.ndarray
    product: np.ndarray  # index into the catalog
    qty_milli: np.ndarray
    discount: np.ndarray  # kopecks
    amount: np.ndarray  # kopecks, exactly as the generated column computes it

    @property
    def count(self) -> int:
        return len(self.customer)


def _sample_days(
    rng: np.random.Generator, cum: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    # Inverse CDF of the seasonal weights restricted to [lo, hi): one draw per row.
    target = cum[lo] + rng.random(len(lo)) * (cum[hi] - cum[lo])
    day = np.searchsorted(cum, target, side="right") - 1
    return np.clip(day, lo, hi - 1)


def _holiday_receipts(
    rng: np.random.Generator,
    people: People,
    buyers: np.ndarray,
    start: dt.date,
    days: int,
    month: int,
    day_of_month: int,
    givers: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    customers, gift_days = [], []
    for year in range(start.year, start.year + days // 365 + 2):
        holiday = (dt.date(year, month, day_of_month) - start).days
        if holiday - 10 < 0 or holiday - 1 >= days:
            continue
        active = givers & buyers & (people.first_day <= holiday - 10)
        active &= people.end_day > holiday - 1
        chosen = np.flatnonzero(active & (rng.random(people.count) < 0.85))
        # Closer to the holiday, more buyers: offsets 1..10 days before, weighted to the end.
        offset = 1 + np.minimum((10 * rng.beta(1.0, 2.2, size=len(chosen))).astype(int), 9)
        customers.append(chosen)
        gift_days.append(holiday - offset)
    if not customers:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(customers), np.concatenate(gift_days)


def _utc_offsets(stores: list[StoreSpec], start: dt.date, days: int) -> np.ndarray:
    """Minutes east of UTC of every store on every day (tz rules may change over the years)."""
    by_zone: dict[str, np.ndarray] = {}
    table = np.empty((len(stores), days), dtype=np.int64)
    for s, spec in enumerate(stores):
        if spec.timezone not in by_zone:
            zone = ZoneInfo(spec.timezone)
            by_zone[spec.timezone] = np.array(
                [
                    dt.datetime.combine(start + dt.timedelta(days=d), dt.time(12), zone)
                    .utcoffset()
                    .total_seconds()
                    // 60
                    for d in range(days)
                ],
                dtype=np.int64,
            )
        table[s] = by_zone[spec.timezone]
    return table


def _category_mix(kind: int, female: bool, december: bool) -> np.ndarray:
    if kind == GIFT_MARCH_8:
        mix = np.zeros(len(TOP_CATEGORIES))
        mix[[GIFTS, COSMETICS, GROCERIES]] = [0.5, 0.42, 0.08]
        return mix
    if kind == GIFT_FEB_23:
        mix = np.zeros(len(TOP_CATEGORIES))
        mix[[GIFTS, ELECTRONICS, 0, COSMETICS]] = [0.45, 0.25, 0.15, 0.15]
        return mix
    if kind == ANONYMOUS:
        mix = np.array([0.15, 0.06, 0.12, 0.06, 0.08, 0.45, 0.08])
    else:
        mix = np.array([c[3] if female else c[4] for c in TOP_CATEGORIES])
    if december:
        mix = mix.copy()
        mix[GIFTS] *= 3.0
        mix[COSMETICS] *= 1.5
        mix[ELECTRONICS] *= 1.3
    return mix / mix.sum()


def simulate(
    *,
    rng: np.random.Generator,
    people: People,
    stores: list[StoreSpec],
    catalog: Catalog,
    start: dt.date,
    days: int,
    years: int,
) -> Receipts:
    """Every receipt of the window, in time order, with lines and totals."""
    weights = day_weights(start, days)
    cum = np.concatenate([[0.0], np.cumsum(weights)])
    buyers = ~people.is_lead
    n = people.count
    reg_cust, reg_day = _bgnbd_days(rng, people, buyers, cum / weights.mean(), days)

    female = people.gender == FEMALE
    r = rng.random(n)
    march_givers = np.where(female, r < 0.10, r < 0.40)
    feb_givers = female & (rng.random(n) < 0.28)
    # Gifts only while the customer still shops with us (their last regular purchase).
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, reg_cust, reg_day)
    people.end_day = np.where(buyers, np.maximum(last + 1, people.first_day + 1), people.end_day)
    m8_cust, m8_day = _holiday_receipts(rng, people, buyers, start, days, 3, 8, march_givers)
    f23_cust, f23_day = _holiday_receipts(rng, people, buyers, start, days, 2, 23, feb_givers)

    known_receipts = len(reg_cust) + len(m8_cust) + len(f23_cust)
    anonymous = int(round(known_receipts * ANONYMOUS_SHARE / (1 - ANONYMOUS_SHARE)))
    first_cust = np.empty(0, dtype=np.int64)
    anon_day = _sample_days(
        rng, cum, np.zeros(anonymous, np.int64), np.full(anonymous, days, np.int64)
    )

    customer = np.concatenate([first_cust, reg_cust, m8_cust, f23_cust, np.full(anonymous, -1)])
    day = np.concatenate([people.first_day[first_cust], reg_day, m8_day, f23_day, anon_day])
    kind = np.concatenate(
        [
            np.full(len(first_cust) + len(reg_cust), REGULAR),
            np.full(len(m8_cust), GIFT_MARCH_8),
            np.full(len(f23_cust), GIFT_FEB_23),
            np.full(anonymous, ANONYMOUS),
        ]
    ).astype(np.int8)
    total_receipts = len(customer)

    store_w = np.array([s.weight for s in stores])
    other_store = rng.choice(len(stores), size=total_receipts, p=store_w / store_w.sum())
    known = customer >= 0
    at_home = known & (rng.random(total_receipts) < 0.85)
    store = np.where(at_home, people.home_store[np.maximum(customer, 0)], other_store)
    channel = rng.choice(len(CHANNELS), size=total_receipts, p=CHANNEL_SHARES)
    channel[~known] = 0
    payment = rng.choice(len(PAYMENT_METHODS), size=total_receipts, p=PAYMENT_SHARES)
    # Shops are open 10:00-22:00 local time with an evening peak; online orders come any time.
    minute = 600 + (720 * rng.beta(2.2, 1.7, size=total_receipts)).astype(np.int64)
    online_minute = 420 + rng.integers(0, 1020, size=total_receipts)
    minute = np.where(channel == 1, online_minute, minute)
    second = rng.integers(0, 60, size=total_receipts)
    offsets = _utc_offsets(stores, start, days)[store, day]
    local_midnight = np.datetime64(start, "s") + day * 86400
    ts = local_midnight + (minute - offsets) * 60 + second

    order = np.argsort(ts, kind="stable")
    customer, day, kind, store, channel, payment, ts = (
        a[order] for a in (customer, day, kind, store, channel, payment, ts)
    )
    pos_no = _running_number(store, len(stores))

    # Lines: 1-5 per receipt, more for customers with a bigger appetite.
    basket = np.where(customer >= 0, people.basket[np.maximum(customer, 0)], 0.5)
    basket = np.where(kind == GIFT_MARCH_8, 0.35, np.where(kind == GIFT_FEB_23, 0.3, basket))
    line_count = 1 + np.minimum(rng.poisson(basket), 4)
    line_start = np.concatenate([[0], np.cumsum(line_count)[:-1]])
    lines = int(line_count.sum())
    line_receipt = np.repeat(np.arange(total_receipts), line_count)
    line_no = np.arange(lines) - line_start[line_receipt] + 1

    is_female = np.where(customer >= 0, female[np.maximum(customer, 0)], True)
    december = (np.datetime64(start, "D") + day).astype("datetime64[M]").astype(int) % 12 == 11
    mix_key = kind.astype(np.int64) * 4 + is_female * 2 + december
    line_key = mix_key[line_receipt]
    category = np.empty(lines, dtype=np.int64)
    for key in np.unique(line_key).tolist():
        where = np.flatnonzero(line_key == key)
        mix = _category_mix(key // 4, bool(key // 2 % 2), bool(key % 2))
        category[where] = rng.choice(len(mix), size=len(where), p=mix)
    product = np.empty(lines, dtype=np.int64)
    popularity = np.array(catalog.popularity)
    prices = np.array(catalog.price_kop, dtype=float)
    # A customer's price level tilts the choice within a category towards its dearer goods
    # (anonymous buyers at the middle): spend per visit differs by customer.
    level = np.where(customer >= 0, people.price_level[np.maximum(customer, 0)], 1.0)
    line_level = level[line_receipt]
    for top, members in enumerate(catalog.by_top):
        where = np.flatnonzero(category == top)
        members = np.array(members)[np.argsort(prices[members], kind="stable")]
        cumulative = np.cumsum(popularity[members]) / popularity[members].sum()
        draw = rng.random(len(where)) ** (1 / line_level[where])
        pick = np.minimum(np.searchsorted(cumulative, draw), len(members) - 1)
        product[where] = members[pick]

    qty_milli = _quantities(rng, category, product, catalog)
    price = np.array(catalog.price_kop, dtype=np.int64)[product]
    gross = (qty_milli * price + 500) // 1000
    discounted = rng.random(lines) < 0.22
    rate = rng.choice([5, 10, 15, 20, 30], size=lines, p=[0.3, 0.3, 0.15, 0.15, 0.1])
    discount = np.where(discounted, gross * rate // 100, 0)
    amount = gross - discount
    total = np.add.reduceat(amount, line_start)

    return Receipts(
        customer=customer,
        store=store,
        day=day,
        ts=ts,
        kind=kind,
        payment=payment,
        channel=channel,
        pos_no=pos_no,
        total=total,
        line_start=line_start,
        line_count=line_count,
        line_receipt=line_receipt,
        line_no=line_no,
        product=product,
        qty_milli=qty_milli,
        discount=discount,
        amount=amount,
    )


def _bgnbd_days(
    rng: np.random.Generator, people: People, buyers: np.ndarray, business: np.ndarray, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """(customer, window day) of every regular purchase, BG/NBD-like in business time.

    `business[d]` is the business time at the start of window day d (the seasonal weights
    summed, one unit per average day). A new customer's first purchase is on their arrival day;
    a card from before the window is alive on its first day and buys after an exponential wait.
    After each repeat purchase the customer leaves for good with their own chance.
    """
    end = business[days]
    pre = people.pre_window
    now = np.where(pre, 0.0, business[people.first_day])
    alive = buyers.copy()
    customers, times = [np.flatnonzero(buyers & ~pre)], [now[buyers & ~pre]]
    while alive.any():
        index = np.flatnonzero(alive)
        now[index] += rng.exponential(1.0, len(index)) / np.maximum(people.rate[index], 1e-9)
        over = now[index] >= end
        alive[index[over]] = False
        bought = index[~over]
        customers.append(bought)
        times.append(now[bought])
        leaving = rng.random(len(bought)) < people.leave[bought]
        alive[bought[leaving]] = False
    customer = np.concatenate(customers)
    day = np.searchsorted(business, np.concatenate(times), side="right") - 1
    return customer.astype(np.int64), np.clip(day, 0, days - 1).astype(np.int64)


def _running_number(store: np.ndarray, stores: int) -> np.ndarray:
    """1, 2, 3... per store in time order: the till's own receipt numbering."""
    by_store = np.argsort(store, kind="stable")
    counts = np.bincount(store, minlength=stores)
    group_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    number = np.empty(len(store), dtype=np.int64)
    number[by_store] = np.arange(len(store)) - group_start[store[by_store]] + 1
    return number


def _quantities(
    rng: np.random.Generator, category: np.ndarray, product: np.ndarray, catalog: Catalog
) -> np.ndarray:
    lines = len(category)
    pieces = rng.choice([1, 2, 3, 4, 5], size=lines, p=[0.8, 0.13, 0.04, 0.02, 0.01])
    grocery_pieces = rng.choice([1, 2, 3, 4, 6], size=lines, p=[0.58, 0.25, 0.1, 0.04, 0.03])
    pieces = np.where(category == GROCERIES, grocery_pieces, pieces)
    big_ticket = (category == ELECTRONICS) | (category == APPLIANCES)
    pieces = np.where(big_ticket, np.where(rng.random(lines) < 0.03, 2, 1), pieces)
    grams = rng.integers(60, 500, size=lines) * 5  # 0.300-2.495 kg, weighed to 5 g
    weighed = np.array(catalog.weighed)[product]
    return np.where(weighed, grams, pieces * 1000)


@dataclass
class Returns:
    """Returned receipts and, per returned line, the quantity brought back."""

    receipt: np.ndarray  # receipt index
    ts: np.ndarray  # datetime64[s]
    pos_no: np.ndarray
    line_return: np.ndarray  # index into `receipt`
    line: np.ndarray  # global line index
    qty_milli: np.ndarray


def plan_returns(rng: np.random.Generator, receipts: Receipts, days: int) -> Returns:
    """A few receipts come back within two weeks: one line or all, some only partly."""
    count = receipts.count
    after = rng.integers(1, 15, size=count)
    chosen = (rng.random(count) < RETURN_SHARE) & (receipts.day + after <= days - 1)
    chosen &= receipts.total > 0
    picked = np.flatnonzero(chosen)
    # Earlier in the day than the purchase time at most, so no return lands after "yesterday".
    jitter = rng.integers(0, 3 * 3600, size=len(picked))
    ts = receipts.ts[picked] + after[picked] * 86400 - jitter
    order = np.argsort(ts, kind="stable")
    picked, ts = picked[order], ts[order]
    pos_no = _running_number(receipts.store[picked], int(receipts.store.max(initial=0)) + 1)

    whole = rng.random(len(picked)) < 0.3
    one_line = rng.integers(0, 1 << 30, size=len(picked))
    line_return, line, qty = [], [], []
    partial = rng.random(receipts.qty_milli.shape[0]) < 0.5
    for k, r in enumerate(picked.tolist()):
        start = int(receipts.line_start[r])
        count_lines = int(receipts.line_count[r])
        targets = (
            range(start, start + count_lines)
            if whole[k]
            else [start + int(one_line[k] % count_lines)]
        )
        for index in targets:
            bought = int(receipts.qty_milli[index])
            back = bought
            if bought % 1000 == 0 and bought > 1000 and partial[index]:
                back = 1000 * (1 + int(one_line[k] % (bought // 1000 - 1)))
            line_return.append(k)
            line.append(index)
            qty.append(back)
    return Returns(
        receipt=picked,
        ts=ts,
        pos_no=pos_no,
        line_return=np.array(line_return, dtype=np.int64),
        line=np.array(line, dtype=np.int64),
        qty_milli=np.array(qty, dtype=np.int64),
    )
