"""A fast validator for the common, clean receipt or cart; anything unusual goes to the
serializer.

DRF's field machinery costs about a millisecond per receipt, which is most of a bulk request,
and as much again per cart the till asks `loyalty/calculate` about (it deep-copies its declared
fields for every instance). `receipt_fast` and `cart_fast` accept only inputs they can prove
valid with plain comparisons and return exactly what `ReceiptInputSerializer` and loyalty's
`CalculateInputSerializer` would; on any doubt they return None and the caller runs the
serializer, which stays the one authority for error messages. Tests check both agree.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from customers.phones import normalize_phone
from sales.models import PaymentMethod, SalesChannel
from sales.services import money

from .serializers import (
    EARLIEST,
    FUTURE_SLACK,
    MAX_ID,
    MAX_LINES,
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_TOTAL,
    validate_category_path,
)

_RECEIPT_KEYS = frozenset(
    {
        "pos_receipt_id",
        "purchased_at",
        "customer_id",
        "phone",
        "card",
        "payment_method",
        "channel",
        "lines",
        "total",
        "points_redeemed",
    }
)
_LINE_KEYS = frozenset(
    {"sku", "quantity", "unit_price", "discount", "unit_cost", "name", "category"}
)
_PAYMENT = frozenset(PaymentMethod.values)
_CHANNEL = frozenset(SalesChannel.values)
_Q3 = Decimal("0.001")
_Q2 = Decimal("0.01")
_ZERO = Decimal(0)
_MIN_QUANTITY = Decimal("0.001")
_DEFAULT_DISCOUNT = Decimal("0")


class _Doubt(Exception):
    """Not provably valid: let the serializer decide."""


def _text(value: Any, max_length: int, *, blank: bool = False) -> str:
    if type(value) is not str or len(value) > max_length or not value.isprintable():
        raise _Doubt
    if value != value.strip() or (not value and not blank):
        raise _Doubt
    return value


def _decimal(value: Any, places: int, max_digits: int, low: Decimal, high: Decimal) -> Decimal:
    if type(value) is str:
        if len(value) > 30:
            raise _Doubt
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            raise _Doubt from exc
    elif type(value) is int or type(value) is Decimal:
        number = Decimal(value)
    else:
        raise _Doubt
    if not number.is_finite():
        raise _Doubt
    sign, digits, exponent = number.as_tuple()
    if exponent < -places:
        raise _Doubt
    total = len(digits) + exponent if exponent >= 0 else max(len(digits), -exponent)
    if total > max_digits or not (low <= number <= high):
        raise _Doubt
    return number.quantize(_Q3 if places == 3 else _Q2)


def _line(raw: Any) -> dict[str, Any]:
    if type(raw) is not dict or not raw.keys() <= _LINE_KEYS:
        raise _Doubt
    quantity = _decimal(raw["quantity"], 3, 12, _MIN_QUANTITY, MAX_QUANTITY)
    unit_price = _decimal(raw["unit_price"], 2, 14, _ZERO, MAX_PRICE)
    discount = raw.get("discount")
    discount = (
        _DEFAULT_DISCOUNT if "discount" not in raw else _decimal(discount, 2, 14, _ZERO, MAX_PRICE)
    )
    unit_cost = raw.get("unit_cost")
    if unit_cost is not None:
        unit_cost = _decimal(unit_cost, 2, 14, _ZERO, MAX_PRICE)
    name = _text(raw["name"], 300, blank=True) if "name" in raw else ""
    category = _text(raw["category"], 500, blank=True) if "category" in raw else ""
    if category:
        try:
            validate_category_path(category)
        except serializers.ValidationError as exc:
            raise _Doubt from exc
    if discount > quantity * unit_price or quantity * unit_price > MAX_TOTAL:
        raise _Doubt
    if unit_cost is not None and quantity * unit_cost > MAX_TOTAL:
        raise _Doubt
    return {
        "sku": _text(raw["sku"], 64),
        "quantity": quantity,
        "unit_price": unit_price,
        "discount": discount,
        "unit_cost": unit_cost,
        "name": name,
        "category": category,
    }


def receipt_fast(raw: Any, now: dt.datetime) -> dict[str, Any] | None:
    """The validated receipt, as the serializer would give it, or None when not sure."""
    try:
        return _receipt(raw, now)
    except (_Doubt, KeyError, TypeError, ValueError, OverflowError):
        return None


def _moment(stamp: Any, now: dt.datetime) -> dt.datetime:
    if type(stamp) is not str or len(stamp) > 40:
        raise _Doubt
    moment = dt.datetime.fromisoformat(stamp)
    if moment.tzinfo is None or not (EARLIEST <= moment <= now + FUTURE_SLACK):
        raise _Doubt
    return moment.astimezone(timezone.get_current_timezone())


def _lines(raw: Any) -> list[dict[str, Any]]:
    if type(raw) is not list or not (1 <= len(raw) <= MAX_LINES):
        raise _Doubt
    return [_line(line) for line in raw]


def _customer_ref(raw: dict[str, Any], data: dict[str, Any]) -> None:
    """customer_id, phone or card (at most one) into `data`, which holds their defaults."""
    references = 0
    customer_id = raw.get("customer_id")
    if customer_id is not None:
        if type(customer_id) is not int or not (1 <= customer_id <= MAX_ID):
            raise _Doubt
        data["customer_id"] = customer_id
        references += 1
    if raw.get("phone"):
        phone = _text(raw["phone"], 32)
        try:
            data["phone"] = normalize_phone(phone)
        except DjangoValidationError as exc:
            raise _Doubt from exc
        references += 1
    if "card" in raw:
        data["card"] = _text(raw["card"], 32, blank=True)
        references += bool(data["card"])
    if references > 1:
        raise _Doubt


def _receipt(raw: Any, now: dt.datetime) -> dict[str, Any]:
    if type(raw) is not dict or not raw.keys() <= _RECEIPT_KEYS:
        raise _Doubt
    data = {
        "points_redeemed": _ZERO,
        "customer_id": None,
        "phone": "",
        "card": "",
        "pos_receipt_id": _text(raw["pos_receipt_id"], 64),
        "purchased_at": _moment(raw["purchased_at"], now),
        "payment_method": raw.get("payment_method", PaymentMethod.CARD),
        "channel": raw.get("channel", SalesChannel.STORE),
        "lines": _lines(raw["lines"]),
        "total": _decimal(raw["total"], 2, 14, _ZERO, MAX_TOTAL),
    }
    if data["payment_method"] not in _PAYMENT or data["channel"] not in _CHANNEL:
        raise _Doubt
    _customer_ref(raw, data)
    costs = sum((line["quantity"] * (line["unit_cost"] or _ZERO) for line in data["lines"]), _ZERO)
    if costs > MAX_TOTAL:
        raise _Doubt
    if "points_redeemed" in raw:
        # A card holder's offline receipt paid partly in points: left to the serializer, these
        # were a quarter of what the bonus programme added to a bulk upload's time.
        points = _decimal(raw["points_redeemed"], 2, 14, _ZERO, MAX_TOTAL)
        if points and not (data["customer_id"] or data["phone"] or data["card"]):
            raise _Doubt
        if points > data["total"]:
            raise _Doubt
        data["points_redeemed"] = points
    lines_total = sum(
        (money(line["quantity"] * line["unit_price"] - line["discount"]) for line in data["lines"]),
        _ZERO,
    )
    if money(data["total"]) != lines_total:
        raise _Doubt
    return data


_CART_KEYS = frozenset({"purchased_at", "customer_id", "phone", "card", "lines", "points_wanted"})


def cart_fast(raw: Any, now: dt.datetime) -> dict[str, Any] | None:
    """The validated cart of `loyalty/calculate`, as its serializer would give it, or None
    when not sure."""
    try:
        return _cart(raw, now)
    except (_Doubt, KeyError, TypeError, ValueError, OverflowError):
        return None


def _cart(raw: Any, now: dt.datetime) -> dict[str, Any]:
    if type(raw) is not dict or not raw.keys() <= _CART_KEYS:
        raise _Doubt
    data = {
        "customer_id": None,
        "phone": "",
        "card": "",
        "lines": _lines(raw["lines"]),
        "points_wanted": (
            _decimal(raw["points_wanted"], 2, 14, _ZERO, MAX_TOTAL)
            if "points_wanted" in raw
            else _ZERO
        ),
    }
    if "purchased_at" in raw:
        data["purchased_at"] = _moment(raw["purchased_at"], now)
    _customer_ref(raw, data)
    return data
