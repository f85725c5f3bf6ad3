"""Campaigns' action on the customer list's bulk bar: add the selection to a static segment.

Registered in `CampaignsConfig.ready()` into `customers.bulk`, the registry customers owns, so
customers (a lower layer) never imports campaigns.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns import selectors
from campaigns.services.static_segments import NEW, segment_members_add, static_segment_create
from customers.bulk import BulkAction


def _choices(user) -> list[tuple[str, str]]:
    static = selectors.segment_list(user=user).filter(frozen_at__isnull=False).order_by("name")
    return [(NEW, _("New static segment")), *((str(s.pk), s.name) for s in static)]


@transaction.atomic
def _add(*, actor, ids: list[int], value: str, request=None) -> int:
    if value == NEW:
        name = request.POST.get("name", "") if request is not None else ""
        segment = static_segment_create(actor=actor, name=name)
    else:
        segment = (
            selectors.segment_list(user=actor).filter(pk=int(value)).first()
            if value.isdigit() and len(value) < 19
            else None
        )
        if segment is None:
            raise ValidationError({"value": [_("Choose a segment.")]})
    return segment_members_add(actor=actor, segment=segment, ids=ids, request=request)


ADD_TO_SEGMENT = BulkAction(
    "add_to_segment",
    gettext_lazy("Add to a static segment"),
    selectors.can_manage,
    _choices,
    _add,
)
