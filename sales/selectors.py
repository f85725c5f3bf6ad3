"""Reads of sales. Receipts of a customer are reached only through a customer the user may see."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .models import Receipt, ReceiptLine, Return, ReturnLine


def _lines() -> Prefetch:
    return Prefetch(
        "lines", queryset=ReceiptLine.objects.select_related("product").order_by("line_no")
    )


def receipt_with_lines(receipt_id: int) -> Receipt:
    """One receipt with its store and lines (for the POS API's answer); two queries."""
    return Receipt.objects.select_related("store").prefetch_related(_lines()).get(pk=receipt_id)


def return_with_lines(return_id: int) -> Return:
    """One return with its receipt, store and lines; two queries."""
    return (
        Return.objects.select_related("store", "receipt")
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=ReturnLine.objects.select_related("receipt_line").order_by(
                    "receipt_line__line_no"
                ),
            )
        )
        .get(pk=return_id)
    )


def customer_receipts(*, customer) -> QuerySet[Receipt]:
    """Receipts of a customer the caller has already been allowed to see, lines prefetched.

    Callers obtain `customer` from `customers.access.visible_customers(user)`.
    """
    return (
        Receipt.objects.filter(customer=customer)
        .select_related("store")
        .prefetch_related(_lines())
        .order_by("-purchased_at", "-id")
    )
