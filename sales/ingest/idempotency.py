"""Idempotency of what the tills send: canonical content, its hash, and the conflict.

A receipt is known by (store, pos_receipt_id), a return by (store, pos_return_id), which the
database keeps unique. The posted content is reduced to a canonical form and hashed; a repeat
with the same hash is a harmless retry (answered with what is stored), a repeat with another
hash is a conflict. Two racing requests are decided by the unique constraint: the loser's
insert fails inside its own savepoint (or does nothing, ON CONFLICT) and it then reads the
winner's row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.utils.translation import gettext as _

RECEIPT_UNIQUE = "receipt_unique_pos_id_per_store"
RETURN_UNIQUE = "return_unique_pos_id_per_store"


class IdempotencyConflict(Exception):
    """The pos id is already stored with different content."""

    def __init__(self, *, field_name: str, pos_id: str, existing_id: int):
        super().__init__(pos_id)
        self.field_name = field_name
        self.pos_id = pos_id
        self.existing_id = existing_id

    @property
    def message(self) -> str:
        return _("%(id)s was already received with different content.") % {"id": self.pos_id}


@dataclass
class Outcome:
    created: bool
    obj: Any


def _dec(value: Decimal | None) -> str | None:
    # 1.5, 1.50 and 1.500 are the same quantity and must hash the same.
    return None if value is None else format(value.normalize(), "f")


def line_canonical(line: dict[str, Any]) -> dict[str, Any]:
    """One line of `receipt_canonical` (the history import reuses a repeated line's)."""
    return {
        "sku": line["sku"],
        "quantity": _dec(line["quantity"]),
        "unit_price": _dec(line["unit_price"]),
        "discount": _dec(line["discount"]),
        "unit_cost": _dec(line.get("unit_cost")),
        "name": line.get("name") or "",
        "category": line.get("category") or "",
    }


def receipt_canonical(data: dict[str, Any]) -> dict[str, Any]:
    """The validated receipt as plain JSON values, independent of how the till spelled them."""
    return {
        "pos_receipt_id": data["pos_receipt_id"],
        "purchased_at": data["purchased_at"].astimezone(dt.UTC).isoformat(),
        "customer_id": data.get("customer_id"),
        "phone": data.get("phone") or "",
        "card": data.get("card") or "",
        "payment_method": data["payment_method"],
        "channel": data["channel"],
        "total": _dec(data["total"]),
        "lines": [line_canonical(line) for line in data["lines"]],
        # Only when points are spent, so receipts stored before loyalty keep their hashes.
        **(
            {"points_redeemed": _dec(data["points_redeemed"])}
            if data.get("points_redeemed")
            else {}
        ),
    }


def return_canonical(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "pos_return_id": data["pos_return_id"],
        "pos_receipt_id": data["pos_receipt_id"],
        "returned_at": data["returned_at"].astimezone(dt.UTC).isoformat(),
        "lines": [
            {"line_no": line["line_no"], "quantity": _dec(line["quantity"])}
            for line in data["lines"]
        ],
    }


def canonical_text(canonical: dict[str, Any]) -> str:
    """The JSON text `content_hash` hashes (the history import hashes it in two steps)."""
    return json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(canonical: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_text(canonical).encode()).hexdigest()


def is_violation(exc: IntegrityError, constraint: str) -> bool:
    """True when `exc` is the database refusing a row by this (unique) constraint."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint
