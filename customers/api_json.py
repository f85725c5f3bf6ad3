"""Plain JSON values for API bodies built without a serializer per row.

A list page of the API used to build one `Serializer` per customer; each deep-copies its
declared fields, and a page of them churned the worker's heap into a full garbage collection
every few requests (the p95 spikes issue 15 measured). These field instances are made once and
reused, so the values come out exactly as the declared output serializers would write them
(dates in ISO 8601, datetimes in the current time zone with `Z` for UTC, money quantized to two
places as a string), while the body itself is a plain dict.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from rest_framework import serializers

_MONEY = serializers.DecimalField(max_digits=14, decimal_places=2)
_DATE = serializers.DateField()
_DATETIME = serializers.DateTimeField()


def json_money(value: Decimal | str | None) -> str | None:
    return None if value is None else _MONEY.to_representation(value)


def json_date(value: dt.date | None) -> str | None:
    return None if value is None else _DATE.to_representation(value)


def json_datetime(value: dt.datetime | None) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def json_text(value: Any) -> str | None:
    return None if value is None else str(value)


def json_points(points: dict) -> dict:
    """`points_of()` as `PointsSerializer` writes it."""
    return {
        "tier": json_text(points["tier"]),
        "available": json_money(points["available"]),
        "pending": json_money(points["pending"]),
    }


def json_consent(consent: dict) -> dict:
    """`consent_of()` as `ConsentSerializer` writes it."""
    return {name: bool(value) for name, value in consent.items()}
