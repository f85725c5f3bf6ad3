"""The programme's arithmetic, pure: what a cart may burn and will earn, line by line.

Nothing here writes. The till's calculation and the receipt's booking both call `calculate`,
so what the till showed is what the receipt books. Points are kopeck-exact decimals
(1 point = 1 ₽); shares are rounded down to the kopeck, so the programme never gives more than
its rules say, and the points burned are spread over the lines by largest remainder so that
they add up exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache

from dateutil.relativedelta import relativedelta

from .models import ZERO, ProductRule, Programme, Promotion, Tier

KOPECK = Decimal("0.01")


def floor_kopeck(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_DOWN)


@dataclass(frozen=True)
class LineRule:
    no_earn: bool = False
    no_burn: bool = False
    earn_rate: Decimal | None = None


# The rule of a line no rule names (most lines): one frozen instance, not one per line.
NO_RULE = LineRule()


@dataclass
class RuleBook:
    """Everything the arithmetic needs, read in a few small queries and kept per process (see
    `rulebook_for`); nothing in it changes after loading, so threads may share it."""

    programme: Programme
    tiers: list[Tier]
    by_product: dict[int, LineRule]
    by_category: dict[str, LineRule]
    promotions: list[Promotion]

    @classmethod
    def load(cls, *, start: dt.datetime, end: dt.datetime | None = None) -> RuleBook:
        """The rules, with the promotions overlapping [start, end] (end None: open-ended)."""
        by_product: dict[int, LineRule] = {}
        by_category: dict[str, LineRule] = {}
        for rule in ProductRule.objects.select_related("category"):
            value = LineRule(rule.no_earn, rule.no_burn, rule.earn_rate)
            if rule.product_id:
                by_product[rule.product_id] = value
            else:
                by_category[rule.category.path] = value
        promotions = Promotion.objects.filter(ends_at__gt=start)
        if end is not None:
            promotions = promotions.filter(starts_at__lte=end)
        return cls(
            programme=programme_current(),
            tiers=list(Tier.objects.order_by("threshold")),
            by_product=by_product,
            by_category=by_category,
            promotions=list(promotions),
        )

    def rule_for(self, product_id: int | None, category_path: str = "") -> LineRule:
        """A SKU rule beats a category rule; a deeper category beats a shallower one."""
        if product_id is None:
            return NO_RULE
        rule = self.by_product.get(product_id)
        if rule is not None:
            return rule
        path = category_path
        while path and self.by_category:
            rule = self.by_category.get(path)
            if rule is not None:
                return rule
            path = path.rpartition("/")[0]
        return NO_RULE

    def multiplier(self, at: dt.datetime) -> Decimal:
        # Overlapping promotions do not stack: the best one applies.
        best = Decimal(1)
        for promo in self.promotions:
            if promo.starts_at <= at < promo.ends_at and promo.multiplier > best:
                best = promo.multiplier
        return best

    def tier_for_spend(self, spend: Decimal) -> Tier | None:
        found = None
        for tier in self.tiers:
            if tier.threshold <= max(spend, ZERO):
                found = tier
        return found

    def tier_by_id(self, tier_id: int | None) -> Tier | None:
        return next((tier for tier in self.tiers if tier.pk == tier_id), None)

    def base_rate(self, tier: Tier | None) -> Decimal:
        if tier is not None:
            return tier.earn_rate
        return self.tiers[0].earn_rate if self.tiers else ZERO


def category_paths_of(book: RuleBook, product_ids) -> dict[int, str]:
    """Category path of each product, in one query, and only when some category rule exists."""
    ids = {pk for pk in product_ids if pk is not None}
    if not book.by_category or not ids:
        return {}
    from sales.models import Product

    return dict(
        Product.objects.filter(pk__in=ids, category__isnull=False).values_list(
            "pk", "category__path"
        )
    )


# Every calculation and every booking needs the rules, which change a few times a year, so a
# process keeps one copy. Its version is a sequence that triggers bump on any write to the
# programme, tiers, product rules or promotions (migration 0003), whoever writes, and callers
# read it inside a query they make anyway (`VERSION_SQL`), so a change is seen by every process
# on its next request. A sequence is not transactional: a reader may reload between a writer's
# bump and its commit and keep the old rules under the new number. A deferred trigger bumps it
# again at commit, and SAFETY_SECONDS bounds whatever window is left.
SAFETY_SECONDS = 60.0
VERSION_SQL = "SELECT last_value FROM loyalty_rules_version"


@dataclass(frozen=True)
class _Cached:
    version: int
    loaded: float  # time.monotonic()
    covers_from: dt.datetime  # promotions ending after this are in the book
    book: RuleBook


_cached: dict[str, _Cached] = {}


def rules_version() -> int:
    """The rules' version, for a caller with no query of its own to read it in."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(VERSION_SQL)
        return cursor.fetchone()[0]


def rulebook_for(*, at: dt.datetime, version: int) -> RuleBook:
    """The rules for a cart or a receipt at `at`: this process's copy while `version` is the
    current one; a back-dated receipt (before the copy's promotions) reads its own."""
    import time

    from django.utils import timezone

    entry = _cached.get("book")
    if (
        entry is not None
        and entry.version == version
        and time.monotonic() - entry.loaded < SAFETY_SECONDS
        and at >= entry.covers_from
    ):
        return entry.book
    covers_from = timezone.now() - dt.timedelta(days=1)
    if at < covers_from:
        return RuleBook.load(start=at, end=at)
    loaded = time.monotonic()
    book = RuleBook.load(start=covers_from)
    _cached["book"] = _Cached(version, loaded, covers_from, book)
    return book


def rulebook_forget(**kwargs) -> None:
    """Drop this process's copy (a rule saved here; tests that roll their rules back)."""
    _cached.clear()


def programme_current() -> Programme:
    programme = Programme.objects.filter(pk=1).first()
    return programme if programme is not None else Programme(pk=1)


@dataclass
class CartLine:
    line_no: int
    sku: str
    product_id: int | None
    amount: Decimal
    category_path: str = ""


@dataclass
class LineResult:
    line_no: int
    sku: str
    amount: Decimal
    burnable: bool
    redeemed: Decimal = ZERO
    paid: Decimal = ZERO
    earn_rate: Decimal = ZERO
    earned: Decimal = ZERO


@dataclass
class Calculation:
    tier: Tier | None
    available: Decimal
    wanted: Decimal
    max_redeemable: Decimal
    redeemed: Decimal
    earned: Decimal
    multiplier: Decimal
    lines: list[LineResult] = field(default_factory=list)


def _spread(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split `total` over `weights` in kopecks, largest remainder first, adding up exactly."""
    weight_sum = sum(weights, ZERO)
    if total <= 0 or weight_sum <= 0:
        return [ZERO] * len(weights)
    cents = int(total / KOPECK)
    raw = [Decimal(cents) * w / weight_sum for w in weights]
    parts = [int(r) for r in raw]
    left = cents - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (raw[i] - parts[i], weights[i]), reverse=True)
    for i in order[:left]:
        parts[i] += 1
    return [Decimal(p) * KOPECK for p in parts]


def calculate(
    *,
    book: RuleBook,
    tier: Tier | None,
    available: Decimal,
    lines: list[CartLine],
    wanted: Decimal,
    at: dt.datetime,
) -> Calculation:
    """What may be burned (capped by the share, the eligible lines and the balance), how the
    burned points spread over the lines, and what the money paid earns, line by line."""
    results = []
    rules = []
    for line in lines:
        rule = book.rule_for(line.product_id, line.category_path)
        rules.append(rule)
        results.append(LineResult(line.line_no, line.sku, line.amount, burnable=not rule.no_burn))
    eligible = sum((r.amount for r in results if r.burnable), ZERO)
    cap = (
        floor_kopeck(eligible * book.programme.max_burn_share) if book.programme.is_active else ZERO
    )
    max_redeemable = max(min(cap, max(available, ZERO)), ZERO)
    redeemed = min(max(wanted, ZERO), max_redeemable)
    spread = _spread(redeemed, [r.amount if r.burnable else ZERO for r in results])
    multiplier = book.multiplier(at)
    base = book.base_rate(tier)
    for result, rule, part in zip(results, rules, spread, strict=True):
        result.redeemed = part
        result.paid = result.amount - part
        if book.programme.is_active and not rule.no_earn:
            result.earn_rate = (rule.earn_rate if rule.earn_rate is not None else base) * multiplier
            result.earned = floor_kopeck(result.paid * result.earn_rate)
    return Calculation(
        tier=tier,
        available=available,
        wanted=wanted,
        max_redeemable=max_redeemable,
        redeemed=redeemed,
        earned=sum((r.earned for r in results), ZERO),
        multiplier=multiplier,
        lines=results,
    )


def earn_expiry(*, at: dt.datetime, tz, months: int) -> dt.datetime:
    """Points earned on a store-local day stay valid through the same day `months` later and
    expire at the store's midnight that ends it."""
    return _expiry_of_day(at.astimezone(tz).date(), tz, months)


@lru_cache(maxsize=1024)
def _expiry_of_day(local_day: dt.date, tz, months: int) -> dt.datetime:
    # A batch of receipts shares a handful of days; relativedelta is dear enough to count.
    last_day = local_day + relativedelta(months=months)
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
