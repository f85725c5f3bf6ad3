"""What the apps above customers add to a customer's pages, files and filters.

customers sits below sales, loyalty, analytics and campaigns and imports none of them (the layers
in pyproject.toml). Where a customer page shows their data — the purchase history on the card,
the receipts sheet of the subject-access file, the value-class filter of the list — the higher
app fills one of these registries in its `AppConfig.ready()`, and customers reads the registry.

Registration happens once per process at start-up, so the registries are plain module-level
containers; registering the same key twice replaces the first entry (a reloaded app in tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

# --- The web card ------------------------------------------------------------------------------

# name -> callable(request, customer) -> dict merged into the card page's context, in
# registration order.
_card_sections: dict[str, Callable[[Any, Any], dict[str, Any]]] = {}
# htmx target -> callable(request, customer) -> (template name, context): a part of the card
# that reloads on its own (the purchase history's pages).
_card_partials: dict[str, Callable[[Any, Any], tuple[str, dict[str, Any]]]] = {}


def register_card_section(name: str, build: Callable[[Any, Any], dict[str, Any]]) -> None:
    _card_sections[name] = build


def card_sections(request, customer) -> dict[str, Any]:
    """The context every registered section adds to the card of `customer`."""
    context: dict[str, Any] = {}
    for build in _card_sections.values():
        context.update(build(request, customer))
    return context


def register_card_partial(target: str, render: Callable[[Any, Any], tuple[str, dict]]) -> None:
    _card_partials[target] = render


def card_partial(target: str | None) -> Callable[[Any, Any], tuple[str, dict]] | None:
    """The renderer of the card part an htmx request targets, or None for the whole card."""
    return _card_partials.get(target) if target else None


# --- Subject-access file -----------------------------------------------------------------------


@dataclass(frozen=True)
class AccessSheet:
    """One sheet of the subject-access workbook that a higher app contributes.

    Contributed sheets sit after customers' consents sheet and before the contact log, sorted by
    `order`; `title` and `header` are called inside the Russian translation override of the
    file, so they return translated text.
    """

    order: int
    title: Callable[[], str]
    header: Callable[[], list[str]]
    rows: Callable[[Any], list[list[Any]]]


_access_sheets: dict[str, AccessSheet] = {}


def register_access_sheet(name: str, sheet: AccessSheet) -> None:
    _access_sheets[name] = sheet


def access_sheets() -> list[AccessSheet]:
    return sorted(_access_sheets.values(), key=lambda sheet: sheet.order)


# --- Purchases ---------------------------------------------------------------------------------

# Sales keeps the receipts; customers' filters ("bought since", "never bought", retention) need
# an EXISTS over them. Sales registers the base queryset, so the SQL stays what it was.
_purchase_rows: list[Callable[[], QuerySet]] = []


def register_purchase_rows(rows: Callable[[], QuerySet]) -> None:
    _purchase_rows[:] = [rows]


def purchase_rows() -> QuerySet:
    """All receipts as a queryset with a `customer` foreign key (filter it by OuterRef)."""
    if not _purchase_rows:
        raise ImproperlyConfigured("No app registered the purchase rows (sales does, in ready()).")
    return _purchase_rows[0]()


# --- Choices of the list's filters -------------------------------------------------------------

# filter name -> callable returning its choices (analytics: "value_class", "rfm_segment").
_filter_choices: dict[str, Callable[[], list[tuple[str, Any]]]] = {}


def register_filter_choices(name: str, choices: Callable[[], list[tuple[str, Any]]]) -> None:
    _filter_choices[name] = choices


def filter_choices(name: str) -> list[tuple[str, Any]]:
    """The choices a higher app registered for the list filter `name` (none until it does)."""
    choices = _filter_choices.get(name)
    return list(choices()) if choices else []
