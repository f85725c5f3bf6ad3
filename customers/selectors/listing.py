"""The filtered list of customers and its keyset pagination.

Pagination of the list is keyset-based (`(surname, first_name, id) > (...)`), so page 1 000 costs
what page 1 costs at a million cards, and the total is counted only up to `COUNT_CAP` rows
("more than 10 000" beyond it; 1 000 for a name search): an exact count of a million rows
would cost more than the page itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import BooleanField, Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import ExtractDay, ExtractMonth
from django.utils import timezone

from crm.inputs import is_safe_text
from customers.access import visible_customers

from ..extensions import purchase_rows
from ..models import Customer
from .search import search_plan

PAGE_SIZE = 50
COUNT_CAP = 10_000
# A name search is counted to a lower cap: a common surname's prefix matches tens of thousands
# of cards at a million, and even 10,000 of them cost more to count than the ranked page.
NAME_COUNT_CAP = 1_000


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
    # Ticked rows of the list's bulk bar (customers.bulk); None means no such restriction.
    ids: list[int] | None = None

    def is_empty(self) -> bool:
        return not any(
            (
                self.ids is not None,
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
    """Visible customers narrowed by the list's search box and filters (no ordering applied,
    but name matches come ranked)."""
    return search_plan(filters.query).apply(_filtered(user=user, filters=filters))


def _filtered(*, user, filters: ListFilters) -> QuerySet[Customer]:
    """`customer_filter` but for the search box, which the caller applies (last, so that a
    ranked page is walked within every other filter)."""
    customers = visible_customers(user)
    if filters.processing:
        from ..privacy.selectors import processing_state_q

        customers = customers.filter(processing_state_q(filters.processing))
    else:
        # Erased people are out of every list and export; the filter "erased" finds their cards.
        customers = customers.filter(erased_at__isnull=True)
    if filters.ids is not None:
        customers = customers.filter(pk__in=filters.ids)
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
                purchase_rows().filter(
                    customer=OuterRef("pk"),
                    purchased_at__gte=_local_day_start(filters.purchased_after),
                )
            )
        )
    if filters.purchased_before:
        # "Last purchase before D": bought at some point, and nothing since D.
        since = purchase_rows().filter(
            customer=OuterRef("pk"), purchased_at__gte=_local_day_start(filters.purchased_before)
        )
        customers = customers.filter(
            Exists(purchase_rows().filter(customer=OuterRef("pk"))), ~Exists(since)
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
    # The count stops here; `total_capped` says there are more ("more than {cap}").
    cap: int = COUNT_CAP


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
    plan = search_plan(filters.query)
    filtered = _filtered(user=user, filters=filters)
    customers = plan.apply(filtered)
    ranked = filters.query and "rank" in customers.query.annotations
    columns = SORTS[sort]
    table = Customer._meta.db_table
    column_sql = ", ".join(f'"{table}"."{c}"' for c in columns)

    cap = NAME_COUNT_CAP if ranked else COUNT_CAP
    total = customers.order_by().values("pk")[: cap + 1].count()
    capped = total > cap

    if ranked and not after and not before:
        # Name search results come by relevance, one page of them: the first page is walked in
        # rank order (search.SearchPlan.apply with a limit) instead of ranking every match.
        top = plan.apply(filtered, limit=page_size)
        rows = list(_with_card_relations(top)[:page_size])
        return CustomerPage(rows, min(total, cap), capped, None, None, "rank", False, cap=cap)

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
