"""The one door to customer rows, and the contact-details mask.

`visible_customers(user)` implements the "sees customers" column of the roles table in DESIGN.md;
every list, card, search, API, export and analytics drill-down starts from it, so a customer
outside it is a 404, never a 403 that would confirm the record exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

if TYPE_CHECKING:
    from customers.models import Customer


def user_store_ids(user) -> list[int]:
    """Ids of the stores a staff user works in (cached on the user object for the request)."""
    cached = getattr(user, "_clientele_store_ids", None)
    if cached is None:
        from crm.models import Store

        cached = list(
            Store.objects.filter(staff__user=user).values_list("id", flat=True).order_by("id")
        )
        user._clientele_store_ids = cached
    return cached


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def visible_customers(user) -> QuerySet[Customer]:
    """Customers `user` may see.

    Administrators and marketers see the whole base; store managers the customers whose home
    store is one of theirs plus those assigned to them; sales associates the customers of their
    own stores and the cards they created (anyone else they can only find by an exact phone or
    card, see `lookup_customers`); a user with no role, or an inactive one, sees nobody.
    """
    from customers.models import Customer

    customers = Customer.objects.all()
    if not _active(user):
        return customers.none()
    if getattr(user, "is_pos_client", False):
        # A till (sales.apikeys.PosPrincipal) reads in full only its own store's customers.
        return customers.filter(home_store__in=user.store_ids)
    if user.is_superuser or user.has_perm("customers.view_all_customers"):
        return customers
    if user.has_perm("customers.view_store_customers"):
        return customers.filter(Q(home_store__in=user_store_ids(user)) | Q(assigned_manager=user))
    if user.has_perm("customers.lookup_customers"):
        return customers.filter(Q(home_store__in=user_store_ids(user)) | Q(created_by=user))
    return customers.none()


def lookup_customers(user) -> QuerySet[Customer]:
    """Customers `user` may find by an exact phone or loyalty card at the till.

    A customer presenting their card in any store of the chain must be served there, so users
    who may look up reach the whole base this way; callers filter by one exact identifier and
    show only the minimal card.
    """
    from customers.models import Customer

    if not _active(user):
        return Customer.objects.none()
    if user.is_superuser or user.has_perm("customers.lookup_customers"):
        return Customer.objects.all()
    return visible_customers(user)


def lookup_customers_sql(user, alias: str) -> tuple[str, list]:
    """`lookup_customers(user)` as a condition on the customers_customer row `alias`, for a
    hand-written statement on a hot path (the till's calculation): the same branches, and for
    the whole base no subquery at all. A test holds the two equal for every role."""
    if not _active(user):
        return "FALSE", []
    if user.is_superuser or user.has_perm("customers.lookup_customers"):
        return "TRUE", []
    from django.core.exceptions import EmptyResultSet

    try:
        sql, params = visible_customers(user).values("pk").query.sql_with_params()
    except EmptyResultSet:
        # `.none()` (a user with no role) compiles to no SQL at all: nobody.
        return "FALSE", []
    return f"{alias}.id IN ({sql})", list(params)


def can_see_contact_details(user) -> bool:
    return _active(user) and (user.is_superuser or user.has_perm("customers.view_contact_details"))


def can_export(user) -> bool:
    return _active(user) and (user.is_superuser or user.has_perm("customers.export_customers"))


def mask_phone(number: str) -> str:
    """`+79161234567` -> `+7 916 ***-**-67`: enough to confirm with the customer, not to call."""
    if not number:
        return ""
    digits = number.lstrip("+")
    if len(digits) < 6:
        return "***"
    country = digits[:-10] if len(digits) > 10 else digits[:1]
    rest = digits[len(country) :]
    return f"+{country} {rest[:3]} ***-**-{rest[-2:]}"


def mask_email(email: str) -> str:
    """`ivan.petrov@mail.ru` -> `i***@mail.ru`."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_text(value: str) -> str:
    return "***" if value else ""


@dataclass(frozen=True)
class ContactDetails:
    phone: str
    phones: tuple[str, ...]
    email: str
    extra_emails: tuple[str, ...]
    postal_code: str
    address: str
    masked: bool
    # Masked because the user's daily cap of unmasked cards is used up (customers/disclosure.py).
    capped: bool = False


def contact_details(customer: Customer, user, *, masked: bool = False) -> ContactDetails:
    """The customer's contact details as `user` may see them (masked without the permission).

    `masked=True` masks them whatever the permission (lists, a card over the daily cap).
    Expects `phones` prefetched when the card shows more than the primary phone.
    """
    phones = tuple(p.number for p in customer.phones.all()) if customer.pk else ()
    if not masked and can_see_contact_details(user):
        return ContactDetails(
            phone=customer.phone,
            phones=phones,
            email=customer.email,
            extra_emails=tuple(customer.extra_emails or ()),
            postal_code=customer.postal_code,
            address=customer.address,
            masked=False,
        )
    return ContactDetails(
        phone=mask_phone(customer.phone),
        phones=tuple(mask_phone(p) for p in phones),
        email=mask_email(customer.email),
        extra_emails=tuple(mask_email(e) for e in customer.extra_emails or ()),
        postal_code=mask_text(customer.postal_code),
        address=mask_text(customer.address),
        masked=True,
    )
