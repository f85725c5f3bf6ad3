"""The one rule for unmasked contact data, whatever the door (page, fragment, API, preview, export).

Every interface that shows a customer's phone, email or address asks this module, which decides
masked or unmasked, counts, and writes the audit event:

- **A single card** (`card_read`): unmasked when the user may see contact details, audited on
  every read. Each distinct card a user sees unmasked in a local day counts one row against their
  daily allowance; opening the same card again that day costs nothing. Over the allowance the
  card is shown masked (`ContactDetails.capped`), or the API answers 429.
- **Anything list-shaped** (`list_contacts`, `masked_contacts`): masked, for every role. Only a
  user with the export permission may ask for an unmasked list (an export, or the API list with
  `contacts=full`), and every row of it counts against the same allowance (429 beyond it).
- **The allowance** (`daily_allowance`) is the export cap for a user with the export permission
  (the staff profile's, else `CLIENTELE_EXPORT_DAILY_CAP`), else `CLIENTELE_UNMASKED_DAILY_CAP`.

The count lives in one row per user and day (`DisclosureDay`), checked and raised by a single
conditional upsert, so concurrent requests of one user cannot pass the cap together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit_record
from crm.models import AuditAction, DisclosureDay, StaffProfile

from .access import (
    ContactDetails,
    can_export,
    can_see_contact_details,
    contact_details,
    mask_email,
    mask_phone,
)


class ContactsCapReached(PermissionDenied):
    """The user's daily allowance of unmasked contact rows does not cover this request."""

    code = "daily_cap"

    def __init__(self, *, cap: int, used: int, wanted: int):
        self.cap, self.used, self.wanted = cap, used, wanted
        super().__init__(
            _(
                "Your daily limit of %(cap)s customers with contact details is reached "
                "(%(used)s used, %(wanted)s asked). It resets at midnight; an administrator "
                "can raise it."
            )
            % {"cap": cap, "used": used, "wanted": wanted}
        )


class FullListNotPermitted(PermissionDenied):
    """Unmasked lists are exports: only users with the export permission get them."""

    code = "export_permission_required"

    def __init__(self):
        super().__init__(_("Only users allowed to export customers may list contact details."))


def today() -> dt.date:
    return timezone.localdate()


def export_daily_cap(user) -> int:
    """Rows `user` may export per day: the admin's cap on the staff profile, else the default."""
    cap = StaffProfile.objects.filter(user=user).values_list("export_daily_cap", flat=True).first()
    return cap if cap is not None else settings.CLIENTELE_EXPORT_DAILY_CAP


def daily_allowance(user) -> int:
    """Unmasked contact rows `user` may take per day, through every door together."""
    if can_export(user):
        return export_daily_cap(user)
    return settings.CLIENTELE_UNMASKED_DAILY_CAP


def taken_today(user) -> int:
    """Unmasked contact rows (cards, list rows, export rows) `user` has taken today."""
    return (
        DisclosureDay.objects.filter(user=user, day=today()).values_list("rows", flat=True).first()
        or 0
    )


_TAKE_SQL = """
    INSERT INTO crm_disclosureday AS d (user_id, day, rows) VALUES (%s, %s, %s)
    ON CONFLICT (user_id, day) DO UPDATE SET rows = d.rows + EXCLUDED.rows
    WHERE d.rows + EXCLUDED.rows <= %s
    RETURNING rows
"""


def _take(user, rows: int, cap: int) -> bool:
    """Add `rows` to today's count if it stays within `cap`, atomically; False when it would not.

    One statement: PostgreSQL locks the user's row for the check and the increment, so parallel
    requests queue on it instead of all reading the same old count.
    """
    if rows > cap:
        return False
    if rows <= 0:
        return True
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_SQL, [user.pk, today(), rows, cap])
        return cursor.fetchone() is not None


def rows_take(*, user, rows: int) -> int:
    """Count `rows` unmasked rows (an export, a full API page) for `user`; returns the cap.

    Raises ContactsCapReached when they do not fit in what remains of the day's allowance.
    """
    cap = daily_allowance(user)
    if not _take(user, rows, cap):
        raise ContactsCapReached(cap=cap, used=taken_today(user), wanted=rows)
    return cap


class _OverCap(Exception):
    pass


def _take_card(user, customer_id: int) -> bool:
    """Count one distinct card for today; False when the allowance is used up."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO crm_disclosedcard (user_id, day, customer_id) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                    [user.pk, today(), customer_id],
                )
                if cursor.fetchone() is None:
                    return True  # seen unmasked today already: nothing new leaves
            if not _take(user, 1, daily_allowance(user)):
                raise _OverCap  # rolls the card row back with the savepoint
    except _OverCap:
        return False
    return True


def card_read(
    *, user, customer, action: str, request=None, audit: bool = True, **details: Any
) -> ContactDetails:
    """One card's contact details for `user`, counted and audited (`action`, e.g. a card view).

    Unmasked when the user may see contact details and today's allowance covers the card;
    masked with `capped=True` when it does not (the caller shows a message or answers 429).
    """
    capped = False
    if can_see_contact_details(user) and not _take_card(user, customer.pk):
        capped = True
    shown = contact_details(customer, user, masked=capped)
    if capped:
        shown = replace(shown, capped=True)
    if audit:
        audit_record(
            actor=user,
            action=action,
            obj=customer,
            request=request,
            unmasked=not shown.masked,
            **({"capped": True} if capped else {}),
            **details,
        )
        if capped:
            audit_record(
                actor=user,
                action=AuditAction.CONTACTS_CAPPED,
                obj=customer,
                request=request,
                cap=daily_allowance(user),
                via=str(action),
            )
    return shown


def masked_contacts(customer) -> dict[str, str]:
    """The primary phone and email of a list row, masked: lists never carry contacts."""
    return {"phone": mask_phone(customer.phone), "email": mask_email(customer.email)}


def list_contacts(
    *,
    user,
    customers: Sequence,
    full: bool = False,
    request=None,
    action: str | None = None,
    **details: Any,
) -> list[ContactDetails]:
    """Contact details of a list of customers: masked, unless `full` is asked for.

    `full` needs the export permission (FullListNotPermitted) and counts every row against the
    day's allowance (ContactsCapReached); either refusal is audited. With `action`, the read is
    audited with the ids it returned.
    """
    if full:
        if not can_export(user):
            if action:
                audit_record(
                    actor=user,
                    action=AuditAction.CONTACTS_CAPPED,
                    request=request,
                    reason="permission",
                    via=str(action),
                )
            raise FullListNotPermitted()
        try:
            rows_take(user=user, rows=len(customers))
        except ContactsCapReached as refused:
            audit_record(
                actor=user,
                action=AuditAction.CONTACTS_CAPPED,
                request=request,
                reason="cap",
                cap=refused.cap,
                used=refused.used,
                wanted=refused.wanted,
                via=str(action or ""),
            )
            raise
    shown = [contact_details(c, user, masked=not full) for c in customers]
    if action:
        audit_record(
            actor=user,
            action=action,
            request=request,
            rows=len(customers),
            ids=[c.pk for c in customers],
            unmasked=any(not s.masked for s in shown),
            **details,
        )
    return shown
