"""Reads of customers for the web app: search, the filtered list, the card, Today and leads.

Every function starts from `crm.access.visible_customers(user)` (or `lookup_customers` for an
exact phone or card at the till), so nothing here can reach a customer the user may not see.

Pagination of the list is keyset-based (`(surname, first_name, id) > (...)`), so page 1 000 costs
what page 1 costs at a million cards, and the total is counted only up to `COUNT_CAP` rows
("10 000+" beyond it): an exact count of a million rows would cost more than the page itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.postgres.search import TrigramSimilarity
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, ExtractDay, ExtractMonth, Greatest, Upper
from django.utils import timezone

from crm.inputs import is_safe_text
from customers.access import lookup_customers, visible_customers
from sales.models import Receipt, ReceiptLine, Return, ReturnLine

from .folding import Fold, SurnameStem, fold, surname_stem_of
from .models import (
    ConsentEvent,
    Contact,
    Customer,
    CustomerPhone,
    CustomFieldCategory,
    LifecycleStage,
)
from .phones import try_normalize_phone

PAGE_SIZE = 50
COUNT_CAP = 10_000
ZERO = Decimal("0")

# Latin -> Cyrillic for Russian names typed on a Latin keyboard ("Ivanova" -> "ИВАНОВА");
# longest sequences first so "shch" is not read as "s" + "h" + ...
_TRANSLIT = [
    ("SHCH", "Щ"),
    ("SCH", "Щ"),
    ("YO", "Ё"),
    ("ZH", "Ж"),
    ("KH", "Х"),
    ("TS", "Ц"),
    ("CH", "Ч"),
    ("SH", "Ш"),
    ("YU", "Ю"),
    ("YA", "Я"),
    ("YE", "Е"),
    ("IA", "ИЯ"),
    ("IY", "ИЙ"),
    ("EY", "ЕЙ"),
    ("AY", "АЙ"),
    ("OY", "ОЙ"),
    ("UY", "УЙ"),
    ("A", "А"),
    ("B", "Б"),
    ("C", "К"),
    ("D", "Д"),
    ("E", "Е"),
    ("F", "Ф"),
    ("G", "Г"),
    ("H", "Х"),
    ("I", "И"),
    ("J", "Дж"),
    ("K", "К"),
    ("L", "Л"),
    ("M", "М"),
    ("N", "Н"),
    ("O", "О"),
    ("P", "П"),
    ("Q", "К"),
    ("R", "Р"),
    ("S", "С"),
    ("T", "Т"),
    ("U", "У"),
    ("V", "В"),
    ("W", "В"),
    ("X", "КС"),
    ("Y", "Ы"),
    ("Z", "З"),
]
_LATIN = re.compile(r"[A-Z]")
_IDENTIFIER = re.compile(r"^[+\d][\d\s()+\-.]*$")


def latin_to_cyrillic(text: str) -> str:
    """Upper-case Cyrillic reading of a Latin-typed Russian name."""
    text = text.upper()
    out = []
    i = 0
    while i < len(text):
        for latin, cyrillic in _TRANSLIT:
            if text.startswith(latin, i):
                out.append(cyrillic.upper())
                i += len(latin)
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _name_tokens(query: str) -> list[list[str]]:
    """Each word of the query with its spellings to try (as typed, and Cyrillic if Latin),
    folded (see `fold`)."""
    tokens = []
    for word in re.split(r"[\s,]+", query.upper()):
        word = word.strip(".-'\"")
        if not word:
            continue
        variants = [fold(word)]
        if _LATIN.search(word):
            variants.append(fold(latin_to_cyrillic(word)))
        tokens.append(variants)
    return tokens[:4]


def _field_matches(field: str, variants: list[str]) -> Q:
    # `%` (trigram similarity) tolerates typos and `LIKE 'X%'` catches short fragments; both
    # use the GIN trigram indexes on the folded surname and first name.
    condition = Q()
    for variant in variants:
        condition |= Q(**{f"{field}__trigram_similar": variant})
        condition |= Q(**{f"{field}__startswith": variant})
    return condition


def _name_filter(tokens: list[list[str]]) -> Q:
    """Surname and first name in either order; one word matches either of them.

    Pairing the words with the two fields (rather than letting every word match either field)
    lets PostgreSQL AND two small index bitmaps instead of scanning every "Анна" in the base.
    """
    if len(tokens) == 1:
        return _field_matches("surname_folded", tokens[0]) | _field_matches(
            "first_name_folded", tokens[0]
        )
    first, second = tokens[0], tokens[1]
    condition = (
        _field_matches("surname_folded", first) & _field_matches("first_name_folded", second)
    ) | (_field_matches("surname_folded", second) & _field_matches("first_name_folded", first))
    # A third word (a patronymic, usually) narrows further but is not required to be indexed.
    for extra in tokens[2:]:
        condition &= Q(patronymic_folded__startswith=extra[0]) | _field_matches(
            "surname_folded", extra
        )
    return condition


PARTIAL_PHONE_MIN_DIGITS = 4
PARTIAL_PHONE_OWNERS = 200


def _identifier_filter(query: str) -> Q:
    # The phone's owner is looked up first and inlined as an id: with `OR id IN (subquery)`
    # PostgreSQL falls back to a sequential scan, while `card = x OR id = y` is two index probes.
    condition = Q(card_number=re.sub(r"[\s\-()]", "", query))
    phone = try_normalize_phone(query)
    owners: list[int] = []
    if phone:
        owners = list(
            CustomerPhone.objects.filter(number=phone).values_list("customer_id", flat=True)
        )
    digits = re.sub(r"\D", "", query)
    if not owners and PARTIAL_PHONE_MIN_DIGITS <= len(digits) <= 10:
        # A fragment of a number ("5612", "529-56-12"): the trigram index on the numbers finds
        # them; bounded, since four digits can match hundreds of phones at a million cards.
        owners = list(
            CustomerPhone.objects.filter(number__contains=digits).values_list(
                "customer_id", flat=True
            )[:PARTIAL_PHONE_OWNERS]
        )
    if owners:
        condition |= Q(pk__in=owners)
    return condition


def _search_filter(query: str) -> tuple[str, Q, dict[str, Any]]:
    """The kind of query (phone/card/email/name), its filter, and the annotations it needs."""
    query = query.strip()
    if "@" in query:
        return "email", Q(email_upper=query.upper()), {"email_upper": Upper("email")}
    if _IDENTIFIER.match(query):
        return "identifier", _identifier_filter(query), {}
    tokens = _name_tokens(query)
    if not tokens:
        return "none", Q(pk__in=[]), {}
    return (
        "name",
        _name_filter(tokens),
        {
            "surname_folded": Fold("surname"),
            "first_name_folded": Fold("first_name"),
            "patronymic_folded": Fold("patronymic"),
        },
    )


def _name_rank(query: str) -> tuple[Any, Any]:
    """(exact prefix hit, similarity): prefix matches first, then the closest spellings.

    Similarity is taken against the surname's stem, so ИВАНОВ and ИВАНОВА score the same.
    """
    rank = Value(0.0)
    prefix = Q(pk__in=[])
    stem = SurnameStem(Fold("surname"))
    for variants in _name_tokens(query):
        for variant in variants:
            rank = rank + Greatest(
                TrigramSimilarity(stem, Value(surname_stem_of(variant))),
                TrigramSimilarity(Fold("first_name"), Value(variant)),
            )
            prefix |= Q(surname_folded__startswith=variant) | Q(
                first_name_folded__startswith=variant
            )
    return ExpressionWrapper(prefix, output_field=BooleanField()), rank


def customer_search(*, user, query: str, queryset: QuerySet[Customer] | None = None):
    """Visible customers matching one search box: phone in any format (or a fragment of one),
    card, email or name (Ё/Е alike, Latin or Cyrillic, with typos)."""
    customers = queryset if queryset is not None else visible_customers(user)
    query = (query or "").strip()
    if not query:
        return customers
    kind, condition, annotations = _search_filter(query)
    customers = (
        customers.annotate(**annotations).filter(condition)
        if annotations
        else (customers.filter(condition))
    )
    if kind == "name":
        prefix, rank = _name_rank(query)
        customers = customers.annotate(
            prefix_hit=prefix, rank=rank, surname_stem=SurnameStem(Fold("surname"))
        ).order_by(
            F("prefix_hit").desc(), "-rank", "surname_stem", "first_name_folded", "surname", "id"
        )
    return customers


def customer_lookup(*, user, query: str) -> list[Customer]:
    """Customers outside the user's own list found by an exact phone or card (till look-up).

    The caller shows only the minimal, masked card for these.
    """
    query = (query or "").strip()
    if not query or not _IDENTIFIER.match(query) or not user.has_perm("customers.lookup_customers"):
        return []
    visible = visible_customers(user).values("pk")
    return list(
        lookup_customers(user)
        .filter(_identifier_filter(query))
        .exclude(pk__in=visible)
        .select_related("home_store")
        .only("pk", "surname", "first_name", "phone", "card_number", "home_store__name")[:5]
    )


# --- The filtered list -------------------------------------------------------------------------


@dataclass
class ListFilters:
    query: str = ""
    store: int | None = None
    tag: int | None = None
    stage: str = ""
    birthday_days: int | None = None
    consent: str = ""
    purchased_after: dt.date | None = None
    purchased_before: dt.date | None = None
    value_class: str = ""
    rfm_segment: str = ""
    # State of consent to processing (customers.privacy.selectors.ProcessingState).
    processing: str = ""

    def is_empty(self) -> bool:
        return not any(
            (
                self.processing,
                self.query,
                self.store,
                self.tag,
                self.stage,
                self.birthday_days,
                self.consent,
                self.purchased_after,
                self.purchased_before,
                self.value_class,
                self.rfm_segment,
            )
        )


def _birthday_mmdd(days: int, today: dt.date) -> list[int]:
    values = []
    for offset in range(days + 1):
        day = today + dt.timedelta(days=offset)
        values.append(day.month * 100 + day.day)
        # Customers born on 29 February are greeted on the 28th in a common year.
        if day.month == 2 and day.day == 28 and not _is_leap(day.year):
            values.append(229)
    return values


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _local_day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def birthday_filter(customers: QuerySet[Customer], days: int, today: dt.date | None = None):
    today = today or timezone.localdate()
    return customers.annotate(
        birth_mmdd=ExtractMonth("birth_date") * 100 + ExtractDay("birth_date")
    ).filter(birth_date__isnull=False, birth_mmdd__in=_birthday_mmdd(days, today))


def customer_filter(*, user, filters: ListFilters) -> QuerySet[Customer]:
    """Visible customers narrowed by the list's search box and filters (no ordering applied)."""
    customers = visible_customers(user)
    if filters.processing:
        from .privacy.selectors import processing_state_q

        customers = customers.filter(processing_state_q(filters.processing))
    else:
        # Erased people are out of every list and export; the filter "erased" finds their cards.
        customers = customers.filter(erased_at__isnull=True)
    if filters.query:
        customers = customer_search(user=user, query=filters.query, queryset=customers)
    if filters.store:
        customers = customers.filter(home_store_id=filters.store)
    if filters.tag:
        customers = customers.filter(tags__id=filters.tag)
    if filters.stage:
        customers = customers.filter(lifecycle_stage=filters.stage)
    if filters.birthday_days is not None:
        customers = birthday_filter(customers, filters.birthday_days)
    if filters.value_class:
        customers = customers.filter(metrics__value_class=filters.value_class)
    if filters.rfm_segment:
        customers = customers.filter(metrics__rfm_segment=filters.rfm_segment)
    if filters.consent:
        customers = customers.filter(
            **{f"consent_{filters.consent}": True}, do_not_contact=False, erased_at__isnull=True
        )
    if filters.purchased_after:
        customers = customers.filter(
            Exists(
                Receipt.objects.filter(
                    customer=OuterRef("pk"),
                    purchased_at__gte=_local_day_start(filters.purchased_after),
                )
            )
        )
    if filters.purchased_before:
        # "Last purchase before D": bought at some point, and nothing since D.
        since = Receipt.objects.filter(
            customer=OuterRef("pk"), purchased_at__gte=_local_day_start(filters.purchased_before)
        )
        customers = customers.filter(
            Exists(Receipt.objects.filter(customer=OuterRef("pk"))), ~Exists(since)
        )
    return customers


SORTS: dict[str, tuple[str, ...]] = {
    "name": ("surname", "first_name", "id"),
    "created": ("created_at", "id"),
}


def _encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(
        [v.isoformat() if isinstance(v, dt.datetime) else v for v in values], ensure_ascii=False
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


class InvalidCursor(ValueError):
    """An `after`/`before` value this app did not hand out (edited, truncated, forged)."""


_MAX_CURSOR = 1000
_CURSOR_TEXT_LIMIT = 200


def _cursor_value(column: str, value: Any) -> Any:
    """One decoded cursor value, checked against what its column holds, or InvalidCursor."""
    if column == "id":
        if type(value) is not int or not 1 <= value <= 2**63 - 1:
            raise InvalidCursor(column)
        return value
    if column == "created_at":
        from django.utils.dateparse import parse_datetime

        try:
            stamp = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # an offset of +99:00 and the like
            stamp = None
        if stamp is None or stamp.tzinfo is None or not 1900 <= stamp.year <= 2200:
            raise InvalidCursor(column)
        return stamp
    if not isinstance(value, str) or len(value) > _CURSOR_TEXT_LIMIT or not is_safe_text(value):
        raise InvalidCursor(column)
    return value


def _decode_cursor(cursor: str, sort: str) -> list[Any]:
    """The sort key a cursor carries; InvalidCursor for anything `_encode_cursor` did not make."""
    if len(cursor) > _MAX_CURSOR:
        raise InvalidCursor(sort)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidCursor(sort) from exc
    columns = SORTS[sort]
    if not isinstance(values, list) or len(values) != len(columns):
        raise InvalidCursor(sort)
    return [_cursor_value(column, value) for column, value in zip(columns, values, strict=True)]


@dataclass
class CustomerPage:
    customers: list[Customer]
    total: int
    total_capped: bool
    next_cursor: str | None
    prev_cursor: str | None
    sort: str
    descending: bool
    lookups: list[Customer] = field(default_factory=list)


def customer_page(
    *,
    user,
    filters: ListFilters,
    sort: str = "name",
    descending: bool = False,
    after: str = "",
    before: str = "",
    page_size: int = PAGE_SIZE,
) -> CustomerPage:
    """One page of the filtered list, keyset-paginated, with a total counted up to COUNT_CAP."""
    if sort not in SORTS:
        sort = "name"
    customers = customer_filter(user=user, filters=filters)
    ranked = filters.query and "rank" in customers.query.annotations
    columns = SORTS[sort]
    table = Customer._meta.db_table
    column_sql = ", ".join(f'"{table}"."{c}"' for c in columns)

    total = customers.order_by().values("pk")[: COUNT_CAP + 1].count()
    capped = total > COUNT_CAP

    if ranked and not after and not before:
        # Name search results come by relevance; they are few, so one page is enough.
        rows = list(_with_card_relations(customers)[:page_size])
        return CustomerPage(rows, min(total, COUNT_CAP), capped, None, None, "rank", False)

    backwards = bool(before)
    # Decoded before any query, so a bad cursor costs nothing; the caller shows a form error.
    cursor = _decode_cursor(before or after, sort) if (before or after) else None
    forward_desc = descending != backwards
    if cursor is not None:
        op = "<" if forward_desc else ">"
        placeholders = ", ".join(["%s"] * len(columns))
        # A row comparison, so PostgreSQL starts the index scan at the cursor; column names
        # come from SORTS and the values are bound parameters.
        after_cursor = RawSQL(  # noqa: S611
            f"({column_sql}) {op} ({placeholders})", cursor, output_field=BooleanField()
        )
        customers = customers.filter(after_cursor)
    ordering = [f"-{c}" if forward_desc else c for c in columns]
    rows = list(_with_card_relations(customers.order_by(*ordering))[: page_size + 1])
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()

    def key(customer: Customer) -> str:
        return _encode_cursor([getattr(customer, c) for c in columns])

    next_cursor = prev_cursor = None
    if rows:
        if backwards:
            next_cursor = key(rows[-1])
            prev_cursor = key(rows[0]) if has_more else None
        else:
            next_cursor = key(rows[-1]) if has_more else None
            prev_cursor = key(rows[0]) if cursor is not None else None
    return CustomerPage(
        rows, min(total, COUNT_CAP), capped, next_cursor, prev_cursor, sort, descending
    )


def _with_card_relations(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    return customers.select_related("home_store", "metrics").prefetch_related("tags")


# --- The card ----------------------------------------------------------------------------------


def customer_get(*, user, pk: int) -> Customer:
    """One visible customer with what the card header needs; Customer.DoesNotExist otherwise."""
    return (
        visible_customers(user)
        .select_related(
            "home_store", "assigned_manager", "acquisition_channel", "created_by", "metrics"
        )
        .prefetch_related("phones", "tags", "important_dates")
        .get(pk=pk)
    )


@dataclass
class PurchaseTotals:
    receipts: int
    revenue: Decimal
    margin: Decimal
    refunds: Decimal
    average_receipt: Decimal
    last_purchase: dt.datetime | None
    favourite_categories: list[dict[str, Any]]


def purchase_totals(*, customer: Customer) -> PurchaseTotals:
    """Lifetime revenue and margin net of returns, receipts, average receipt, favourite
    categories and last purchase, each computed by one SQL aggregate."""
    receipts = Receipt.objects.filter(customer=customer).aggregate(
        count=Count("id"), total=Coalesce(Sum("total"), ZERO), last=Max("purchased_at")
    )
    line_margin = ReceiptLine.objects.filter(receipt__customer=customer).aggregate(
        margin=Coalesce(Sum("margin"), ZERO)
    )["margin"]
    returned = ReturnLine.objects.filter(return_doc__receipt__customer=customer).aggregate(
        amount=Coalesce(Sum("amount"), ZERO), margin=Coalesce(Sum("margin"), ZERO)
    )
    favourites = list(
        ReceiptLine.objects.filter(receipt__customer=customer, product__category__isnull=False)
        .values("product__category__path")
        .annotate(amount=Sum("amount"), lines=Count("id"))
        .order_by("-amount")[:3]
    )
    revenue = receipts["total"] - returned["amount"]
    count = receipts["count"]
    return PurchaseTotals(
        receipts=count,
        revenue=revenue,
        margin=line_margin - returned["margin"],
        refunds=returned["amount"],
        average_receipt=(receipts["total"] / count).quantize(Decimal("0.01")) if count else ZERO,
        last_purchase=receipts["last"],
        favourite_categories=[
            {"path": row["product__category__path"], "amount": row["amount"]} for row in favourites
        ],
    )


def customer_receipts(*, customer: Customer) -> QuerySet[Receipt]:
    """The customer's receipts, newest first, with lines, products and returns prefetched."""
    return (
        Receipt.objects.filter(customer=customer)
        .select_related("store")
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=ReceiptLine.objects.select_related("product").order_by("line_no"),
            ),
            Prefetch(
                "returns",
                queryset=Return.objects.prefetch_related(
                    Prefetch(
                        "lines",
                        queryset=ReturnLine.objects.select_related("receipt_line__product"),
                    )
                ),
            ),
        )
        .order_by("-purchased_at", "-id")
    )


def customer_contacts(*, customer: Customer, limit: int = 50) -> list[Contact]:
    """The latest entries of the contact log, newest first."""
    return list(Contact.objects.filter(customer=customer).select_related("staff", "store")[:limit])


def consent_history(*, customer: Customer, limit: int = 50) -> list[ConsentEvent]:
    return list(ConsentEvent.objects.filter(customer=customer).select_related("actor")[:limit])


def custom_field_groups(*, customer: Customer) -> list[dict[str, Any]]:
    """Admin-defined fields grouped by category (with its purpose) and this customer's values."""
    from .models import CustomField

    categories = CustomFieldCategory.objects.prefetch_related(
        Prefetch("fields", queryset=CustomField.objects.filter(is_active=True))
    )
    groups = []
    for category in categories:
        fields = [
            {"field": f, "value": (customer.custom_fields or {}).get(f.key)}
            for f in category.fields.all()
        ]
        if fields:
            groups.append({"category": category, "fields": fields})
    return groups


# --- Today and leads ---------------------------------------------------------------------------


def open_followups(*, user, today: dt.date | None = None) -> QuerySet[Contact]:
    """Open follow-ups of visible customers due today or overdue: today's first (the user's own
    first among them), then overdue ones, most recently due first.

    Nothing is capped here: the Today page paginates, so an old backlog never hides today's
    items. Relies on the partial index `contact_open_followups`.
    """
    from django.db.models import Case, IntegerField, When

    today = today or timezone.localdate()
    return (
        Contact.objects.filter(
            customer__in=visible_customers(user).values("pk"),
            due_date__lte=today,
            done_at__isnull=True,
        )
        .select_related("customer", "staff")
        .annotate(
            mine=Q(staff=user),
            is_today=Case(
                When(due_date=today, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
        )
        .order_by("is_today", "-mine", "-due_date", "id")
    )


def can_close_followup(user, contact: Contact) -> bool:
    """Whoever owns a follow-up closes it; so may anyone allowed to change contacts (managers)."""
    return contact.staff_id == user.pk or user.has_perm("customers.change_contact")


def followups_due(*, user, today: dt.date | None = None, limit: int = 50) -> list[Contact]:
    """The first `limit` open follow-ups in Today's order (see `open_followups`)."""
    return list(open_followups(user=user, today=today)[:limit])


def followup_counts(*, user, today: dt.date | None = None) -> dict[str, int]:
    """How many open follow-ups are due today and how many are overdue (one aggregate)."""
    today = today or timezone.localdate()
    return Contact.objects.filter(
        customer__in=visible_customers(user).values("pk"),
        due_date__lte=today,
        done_at__isnull=True,
    ).aggregate(
        today=Count("id", filter=Q(due_date=today)),
        overdue=Count("id", filter=Q(due_date__lt=today)),
    )


def upcoming_birthdays(*, user, days: int = 7, limit: int = 50) -> list[Customer]:
    """Visible customers whose birthday falls within the next `days` days, soonest first."""
    today = timezone.localdate()
    order = {mmdd: i for i, mmdd in enumerate(_birthday_mmdd(days, today))}
    customers = list(
        birthday_filter(visible_customers(user), days, today)
        .filter(erased_at__isnull=True)
        .select_related("home_store")
        .order_by("birth_mmdd", "surname")[: limit * 2]
    )
    customers.sort(key=lambda c: (order.get(c.birth_mmdd, 999), c.surname))
    return customers[:limit]


def leads(*, user, limit: int = 50, new_since_days: int | None = None) -> QuerySet[Customer]:
    """People who contacted the store but never bought, with their last contact, newest first."""
    last_contact = Contact.objects.filter(customer=OuterRef("pk")).order_by("-at", "-id")
    customers = (
        visible_customers(user)
        .filter(erased_at__isnull=True)
        .filter(~Exists(Receipt.objects.filter(customer=OuterRef("pk"))))
        .filter(Exists(Contact.objects.filter(customer=OuterRef("pk"))))
        .annotate(
            last_contact_at=last_contact.values("at")[:1],
            last_contact_topic=last_contact.values("topic")[:1],
            last_contact_channel=last_contact.values("channel")[:1],
        )
        .select_related("home_store")
    )
    if new_since_days is not None:
        since = timezone.now() - dt.timedelta(days=new_since_days)
        customers = customers.filter(
            Q(created_at__gte=since) | Q(lifecycle_stage=LifecycleStage.LEAD)
        )
    return customers.order_by(F("last_contact_at").desc(nulls_last=True), "-id")[:limit]


def recent_vips(*, user, days: int = 30, limit: int = 10) -> list[Customer]:
    """Visible customers of value class VIP who bought in the last `days` days, latest first.

    Empty until analytics has computed value classes.
    """
    since = timezone.now() - dt.timedelta(days=days)
    return list(
        visible_customers(user)
        .filter(metrics__value_class="VIP", metrics__last_purchase_at__gte=since)
        .filter(erased_at__isnull=True)
        .select_related("home_store", "metrics")
        .order_by("-metrics__last_purchase_at")[:limit]
    )


# --- New card ----------------------------------------------------------------------------------


def possible_duplicates(
    *, user, phones: list[str], card_number: str = "", email: str = ""
) -> list[Customer]:
    """Existing customers with the same phone or card among those the user may look up, or the
    same email among those they see."""
    condition = Q()
    numbers = [n for n in (try_normalize_phone(p) for p in phones if p) if n]
    if numbers:
        condition |= Q(pk__in=CustomerPhone.objects.filter(number__in=numbers).values("customer"))
    if card_number:
        condition |= Q(card_number=card_number.strip())
    if email:
        # The till's cross-store look-up is by exact phone or card only: an email match shows
        # only customers the user already sees, or the helper would find anyone by email.
        condition |= Q(
            email_upper=email.strip().upper(), pk__in=visible_customers(user).values("pk")
        )
    if not condition:
        return []
    return list(
        lookup_customers(user)
        .annotate(email_upper=Upper("email"))
        .filter(condition)
        .select_related("home_store")[:5]
    )
