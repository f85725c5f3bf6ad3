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


@dataclass
class RuleBook:
    """Everything the arithmetic needs, read once per request in a few small queries."""

    programme: Programme
    tiers: list[Tier]
    by_product: dict[int, LineRule]
    by_category: dict[str, LineRule]
    promotions: list[Promotion]

    @classmethod
    def load(cls, *, start: dt.datetime, end: dt.datetime | None = None) -> RuleBook:
        by_product: dict[int, LineRule] = {}
        by_category: dict[str, LineRule] = {}
        for rule in ProductRule.objects.select_related("category"):
            value = LineRule(rule.no_earn, rule.no_burn, rule.earn_rate)
            if rule.product_id:
                by_product[rule.product_id] = value
            else:
                by_category[rule.category.path] = value
        return cls(
            programme=programme_current(),
            tiers=list(Tier.objects.order_by("threshold")),
            by_product=by_product,
            by_category=by_category,
            promotions=list(
                Promotion.objects.filter(starts_at__lte=end or start, ends_at__gt=start)
            ),
        )

    category_paths: dict[int, str] = field(default_factory=dict)

    def prepare(self, products) -> None:
        """Read the category paths of these products in one query (only if any rule needs it)."""
        if not self.by_category:
            return
        wanted = {p.category_id for p in products if p is not None and p.category_id}
        wanted -= set(self.category_paths)
        if wanted:
            from sales.models import Category

            self.category_paths.update(
                Category.objects.filter(pk__in=wanted).values_list("pk", "path")
            )

    def rule_for(self, product) -> LineRule:
        if product is None:
            return LineRule()
        rule = self.by_product.get(product.pk)
        if rule is not None:
            return rule
        if not self.by_category or not product.category_id:
            return LineRule()
        if product.category_id not in self.category_paths:
            self.prepare([product])
        path = self.category_paths.get(product.category_id, "")
        while path:
            rule = self.by_category.get(path)
            if rule is not None:
                return rule
            path = path.rpartition("/")[0]
        return LineRule()

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

    def base_rate(self, tier: Tier | None) -> Decimal:
        if tier is not None:
            return tier.earn_rate
        return self.tiers[0].earn_rate if self.tiers else ZERO


# The till's calculation reads the rules on every request; they change a few times a year.
# A process keeps them for CACHE_SECONDS (saving a rule clears this process's copy at once;
# other processes see it within that time). Booking a receipt always reads them fresh.
CACHE_SECONDS = 10.0
_cached: dict[str, tuple[float, RuleBook]] = {}


def rulebook_cached(*, at: dt.datetime) -> RuleBook:
    """The rules for a calculation at `at` (near now: cached; otherwise read)."""
    import time

    from django.utils import timezone

    now = timezone.now()
    if abs(at - now) > dt.timedelta(hours=12):
        return RuleBook.load(start=at)
    entry = _cached.get("book")
    if entry is None or time.monotonic() - entry[0] > CACHE_SECONDS:
        book = RuleBook.load(start=now - dt.timedelta(hours=12), end=now + dt.timedelta(hours=36))
        entry = _cached["book"] = (time.monotonic(), book)
    return entry[1]


def rulebook_forget(**kwargs) -> None:
    _cached.clear()


def programme_current() -> Programme:
    programme = Programme.objects.filter(pk=1).first()
    return programme if programme is not None else Programme(pk=1)


@dataclass
class CartLine:
    line_no: int
    sku: str
    product: object | None  # sales.Product
    amount: Decimal


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
        rule = book.rule_for(line.product)
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
    local_day = at.astimezone(tz).date()
    last_day = local_day + relativedelta(months=months)
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
