"""Returns the tills send: stored once per (store, pos_return_id), against a receipt there."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from crm.models import Store

from .. import signals
from ..models import Receipt, Return
from ..services import return_record
from .idempotency import (
    RETURN_UNIQUE,
    IdempotencyConflict,
    Outcome,
    content_hash,
    is_violation,
    return_canonical,
)
from .receipts import schedule_metrics_refresh


def _return_replay(store: Store, pos_return_id: str, digest: str) -> Outcome | None:
    existing = Return.objects.filter(store=store, pos_return_id=pos_return_id).first()
    if existing is None:
        return None
    if existing.content_hash != digest:
        raise IdempotencyConflict(
            field_name="pos_return_id", pos_id=pos_return_id, existing_id=existing.pk
        )
    return Outcome(created=False, obj=existing)


@transaction.atomic
def return_ingest(*, store: Store, data: dict[str, Any], refresh: bool = True) -> Outcome:
    """Store one validated return of a receipt of the same store, once (idempotent).

    `refresh=False` for an import, which has the whole base recomputed when it is done.
    """
    digest = content_hash(return_canonical(data))
    replay = _return_replay(store, data["pos_return_id"], digest)
    if replay is not None:
        return replay
    receipt = Receipt.objects.filter(store=store, pos_receipt_id=data["pos_receipt_id"]).first()
    if receipt is None:
        raise ValidationError({"pos_receipt_id": [_("This store has no such receipt.")]})
    try:
        with transaction.atomic():
            doc = return_record(
                store=store,
                receipt=receipt,
                pos_return_id=data["pos_return_id"],
                returned_at=data["returned_at"],
                lines=[(line["line_no"], line["quantity"]) for line in data["lines"]],
                content_hash=digest,
            )
            signals.return_stored.send(sender=Return, doc=doc)
    except IntegrityError as exc:
        if not is_violation(exc, RETURN_UNIQUE):
            raise
        replay = _return_replay(store, data["pos_return_id"], digest)
        if replay is None:
            raise
        return replay
    if refresh:
        schedule_metrics_refresh([receipt.customer_id] if receipt.customer_id else [])
    return Outcome(created=True, obj=doc)
