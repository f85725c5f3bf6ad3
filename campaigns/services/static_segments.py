"""Static segments filled by hand: customers ticked on the list join a frozen segment."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from campaigns.models import Segment
from crm.audit import audit_record
from crm.models import AuditAction

NEW = "new"


@transaction.atomic
def segment_members_add(*, actor, segment: Segment, ids: list[int], request=None) -> int:
    """Add customers (ids already scoped to `actor` by the caller) to a static segment, audited;
    returns how many joined (those already in it are skipped)."""
    if not segment.is_frozen:
        raise ValidationError(
            {"value": [_("Only a static segment takes customers by hand; this one has rules.")]}
        )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO campaigns_segmentmember (segment_id, customer_id)
            SELECT %s, unnest(%s::bigint[])
            ON CONFLICT DO NOTHING
            """,
            [segment.pk, ids],
        )
        added = cursor.rowcount
    segment.save(update_fields=["updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_UPDATE,
        obj=segment,
        request=request,
        bulk="add_to_segment",
        target=segment.name,
        customers=len(ids),
        changed=added,
        ids=ids[:1000],
    )
    return added


@transaction.atomic
def static_segment_create(*, actor, name: str = "") -> Segment:
    """A new, empty static segment (frozen from the start), named or dated."""
    name = name.strip() or _("Selection of %(date)s") % {
        "date": formats.date_format(timezone.localdate(), "SHORT_DATE_FORMAT")
    }
    return Segment.objects.create(
        name=name[:200],
        owner=actor if actor.is_authenticated else None,
        frozen_at=timezone.now(),
    )
