"""The purchase history on a customer's web card: lifetime totals and the receipts.

Sales registers these as a card section in its `AppConfig.ready()` (customers.extensions), so
customers shows them without importing sales.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count, Max, Prefetch, QuerySet, Sum
from django.db.models.functions import Coalesce

from .models import Receipt, ReceiptLine, Return, ReturnLine

ZERO = Decimal("0")


@dataclass
class PurchaseTotals:
    receipts: int
    revenue: Decimal
    margin: Decimal
    refunds: Decimal
    average_receipt: Decimal
    last_purchase: dt.datetime | None
    favourite_categories: list[dict[str, Any]]


def purchase_totals(*, customer) -> PurchaseTotals:
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


def card_receipts(*, customer) -> QuerySet[Receipt]:
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


RECEIPTS_PER_PAGE = 10


def purchases_section(request, customer) -> dict[str, Any]:
    """The card's purchase totals and first page of receipts (customers.extensions)."""
    totals = purchase_totals(customer=customer)
    receipts = Paginator(card_receipts(customer=customer), RECEIPTS_PER_PAGE)
    # The totals have just counted the receipts; spare the paginator a second COUNT.
    receipts.count = totals.receipts
    return {"totals": totals, "receipts": receipts.get_page(request.GET.get("page"))}


def purchases_partial(request, customer) -> tuple[str, dict[str, Any]]:
    """One page of the receipts, for the card's htmx pager (target "purchases")."""
    receipts = Paginator(card_receipts(customer=customer), RECEIPTS_PER_PAGE)
    context = {"customer": customer, "receipts": receipts.get_page(request.GET.get("page"))}
    return "customers/_purchases.html", context
