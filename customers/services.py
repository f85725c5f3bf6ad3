"""Writes to customer cards, consent and the contact log.

Every change that the web app, the API, Celery or the admin makes to a card goes through here, so
validation, phone normalisation, consent history and auditing happen in exactly one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from crm.audit import audit_record
from crm.models import AuditAction

from .models import (
    Channel,
    ConsentEvent,
    ConsentMethod,
    Contact,
    Customer,
    CustomerPhone,
    CustomField,
    CustomFieldType,
    LifecycleStage,
    Source,
)
from .phones import normalize_phone

# Card fields a service may set directly; phones, consent and custom fields have their own rules.
CARD_FIELDS = (
    "surname",
    "first_name",
    "patronymic",
    "gender",
    "birth_date",
    "email",
    "extra_emails",
    "card_number",
    "postal_code",
    "city",
    "address",
    "workplace",
    "position",
    "marital_status",
    "children_count",
    "interests",
    "preferences",
    "notes",
    "lifecycle_stage",
    "acquisition_channel",
    "home_store",
    "assigned_manager",
    "do_not_contact",
)


class DuplicateCustomer(ValidationError):
    """A phone or card number already belongs to another card; `existing_id` names it."""

    def __init__(self, message, *, field: str, existing_id: int):
        super().__init__({field: [message]}, code="duplicate")
        self.field = field
        self.existing_id = existing_id


def _phone_owner(number: str, exclude_customer_id: int | None) -> int | None:
    qs = CustomerPhone.objects.filter(number=number)
    if exclude_customer_id:
        qs = qs.exclude(customer_id=exclude_customer_id)
    return qs.values_list("customer_id", flat=True).first()


def _normalized_phones(phones: Iterable[str], exclude_customer_id: int | None) -> list[str]:
    result: list[str] = []
    for raw in phones:
        try:
            number = normalize_phone(raw)
        except ValidationError as exc:
            raise ValidationError({"phones": exc.messages}, code="invalid") from exc
        owner = _phone_owner(number, exclude_customer_id)
        if owner:
            raise DuplicateCustomer(
                _("Phone %(phone)s already belongs to customer #%(id)s.")
                % {"phone": number, "id": owner},
                field="phones",
                existing_id=owner,
            )
        if number not in result:
            result.append(number)
    return result


def _check_card_number(card_number: str | None, exclude_customer_id: int | None) -> None:
    if not card_number:
        return
    qs = Customer.objects.filter(card_number=card_number)
    if exclude_customer_id:
        qs = qs.exclude(pk=exclude_customer_id)
    owner = qs.values_list("pk", flat=True).first()
    if owner:
        raise DuplicateCustomer(
            _("Loyalty card %(card)s already belongs to customer #%(id)s.")
            % {"card": card_number, "id": owner},
            field="card_number",
            existing_id=owner,
        )


def custom_fields_clean(
    values: Mapping[str, Any], definitions: Mapping[str, CustomField] | None = None
) -> dict[str, Any]:
    """Validate custom field values against the admin's definitions; JSON-ready result.

    `definitions` (the active fields by key, `custom_field_definitions()`) lets a caller that
    cleans many cards at once read them once.
    """
    if definitions is None:
        definitions = custom_field_definitions()
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key, value in (values or {}).items():
        field = definitions.get(key)
        if field is None:
            errors.setdefault("custom_fields", []).append(
                _("Unknown custom field %(key)s.") % {"key": key}
            )
            continue
        if value in (None, "", []):
            continue
        try:
            clean[key] = _clean_custom_value(field, value)
        except (ValueError, TypeError, InvalidOperation):
            errors.setdefault("custom_fields", []).append(
                _("%(name)s: %(value)s is not a valid value.")
                % {"name": field.name, "value": value}
            )
    if errors:
        raise ValidationError(errors)
    return clean


def custom_field_definitions() -> dict[str, CustomField]:
    return {f.key: f for f in CustomField.objects.filter(is_active=True)}


def _clean_custom_value(field: CustomField, value: Any) -> Any:
    if field.type == CustomFieldType.TEXT:
        text = str(value).strip()
        if len(text) > 1000:
            raise ValueError(text)
        return text
    if field.type == CustomFieldType.NUMBER:
        number = Decimal(str(value))
        if not number.is_finite():
            raise ValueError(value)
        return str(number)
    if field.type == CustomFieldType.DATE:
        parsed = value if isinstance(value, dt.date) else parse_date(str(value))
        if parsed is None:
            raise ValueError(value)
        return parsed.isoformat()
    if field.type == CustomFieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"true", "1", "yes", "да"}:
            return True
        if str(value).lower() in {"false", "0", "no", "нет"}:
            return False
        raise ValueError(value)
    if field.type == CustomFieldType.CHOICE:
        if value not in field.choices:
            raise ValueError(value)
        return value
    if field.type == CustomFieldType.MULTI:
        items = list(value) if isinstance(value, list | tuple) else [value]
        if any(item not in field.choices for item in items):
            raise ValueError(value)
        return items
    raise ValueError(field.type)


def _clean_emails(data: dict[str, Any]) -> None:
    errors = {}
    if data.get("email"):
        data["email"] = data["email"].strip().lower()
        try:
            validate_email(data["email"])
        except ValidationError as exc:
            errors["email"] = exc.messages
    if "extra_emails" in data:
        extra = [e.strip().lower() for e in data["extra_emails"] or [] if e and e.strip()]
        for email in extra:
            try:
                validate_email(email)
            except ValidationError as exc:
                errors.setdefault("extra_emails", []).extend(exc.messages)
        data["extra_emails"] = extra
    if errors:
        raise ValidationError(errors)


def _snapshot(customer: Customer, fields: Iterable[str]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = getattr(customer, f"{name}_id" if name in _FK_FIELDS else name)
        out[name] = value.isoformat() if isinstance(value, dt.date) else value
    return out


_FK_FIELDS = {"acquisition_channel", "home_store", "assigned_manager"}


def _set_phones(customer: Customer, numbers: list[str]) -> None:
    customer.phones.exclude(number__in=numbers).delete()
    existing = {p.number: p for p in customer.phones.all()}
    # Clear the primary flag first so the one-primary constraint holds at every statement.
    customer.phones.filter(is_primary=True).update(is_primary=False)
    for index, number in enumerate(numbers):
        phone = existing.get(number)
        if phone is None:
            CustomerPhone.objects.create(customer=customer, number=number, is_primary=index == 0)
        elif index == 0:
            CustomerPhone.objects.filter(pk=phone.pk).update(is_primary=True)
    primary = numbers[0] if numbers else ""
    if customer.phone != primary:
        customer.phone = primary
        customer.save(update_fields=["phone", "updated_at"])


def _keep_within_reach(actor, fields: dict[str, Any]) -> None:
    """A card must stay visible to whoever creates it, or it "vanishes" from their search.

    A user who sees only their stores' customers gets their (first) store as the home store when
    none is given, and may not file a card under a store that is not theirs; with no store at
    all, a store manager becomes the assigned manager (associates see the cards they created).
    Tills (POS keys), imports and users who see the whole base are left as they are.
    """
    from customers.access import user_store_ids

    if not getattr(actor, "is_authenticated", False) or getattr(actor, "is_pos_client", False):
        return
    if actor.is_superuser or actor.has_perm("customers.view_all_customers"):
        return
    store_ids = user_store_ids(actor)
    store = fields.get("home_store")
    store_id = getattr(store, "pk", store)
    if store_id is not None and store_id not in store_ids:
        raise ValidationError(
            {"home_store": [_("Choose one of your own stores, or the card would be out of reach.")]}
        )
    if store_id is None and store_ids:
        from crm.models import Store

        fields["home_store"] = Store.objects.get(pk=store_ids[0])
    elif store_id is None and actor.has_perm("customers.view_store_customers"):
        fields.setdefault("assigned_manager", actor)


@transaction.atomic
def customer_create(
    *,
    actor,
    phones: Iterable[str] = (),
    consents: Mapping[str, bool] | None = None,
    consent_method: str = "",
    custom_fields: Mapping[str, Any] | None = None,
    tags: Iterable = (),
    source: str = Source.WEB,
    request=None,
    **fields: Any,
) -> Customer:
    """Create a card with its phones and consent per channel (recorded with its source and how
    the customer agreed); DuplicateCustomer if a phone or card is taken."""
    unknown = set(fields) - set(CARD_FIELDS)
    if unknown:
        raise ValidationError({name: [_("Unknown field.")] for name in sorted(unknown)})
    fields.setdefault("lifecycle_stage", LifecycleStage.LEAD)
    _keep_within_reach(actor, fields)
    if fields.get("card_number") == "":
        fields["card_number"] = None
    _clean_emails(fields)
    numbers = _normalized_phones(phones, None)
    _check_card_number(fields.get("card_number"), None)
    customer = Customer(
        **fields,
        custom_fields=custom_fields_clean(custom_fields or {}),
        source=source,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    customer.full_clean(exclude=["phone", "custom_fields", "tags"], validate_unique=False)
    try:
        with transaction.atomic():
            customer.save()
            _set_phones(customer, numbers)
    except IntegrityError as exc:
        # A concurrent request took the phone or card between our check and the insert.
        raise ValidationError(
            _("This phone or loyalty card was just registered to another customer.")
        ) from exc
    if tags:
        customer.tags.set(tags)
    for channel, granted in (consents or {}).items():
        consent_set(
            customer=customer,
            channel=channel,
            granted=granted,
            source=source,
            method=consent_method if granted else "",
            actor=actor,
        )
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_CREATE,
        obj=customer,
        request=request,
        source=source,
    )
    return customer


@transaction.atomic
def customer_update(
    *,
    actor,
    customer: Customer,
    data: Mapping[str, Any],
    phones: Iterable[str] | None = None,
    custom_fields: Mapping[str, Any] | None = None,
    request=None,
) -> Customer:
    """Change card fields (and optionally the phone list), auditing before and after."""
    if customer.erased_at is not None:
        # Erasure is irreversible (customers.privacy): nothing is written back onto the card.
        raise ValidationError(_("This customer's personal data has been erased."))
    unknown = set(data) - set(CARD_FIELDS)
    if unknown:
        raise ValidationError({name: [_("Unknown field.")] for name in sorted(unknown)})
    changes = dict(data)
    if changes.get("card_number") == "":
        changes["card_number"] = None
    _clean_emails(changes)
    _check_card_number(changes.get("card_number"), customer.pk)
    numbers = _normalized_phones(phones, customer.pk) if phones is not None else None

    changed = [name for name, value in changes.items() if _differs(customer, name, value)]
    rescoped = bool({"home_store", "assigned_manager"} & set(changed)) and _sees(actor, customer)
    before = _snapshot(customer, changed)
    for name in changed:
        setattr(customer, name, changes[name])
    update_fields = list(changed)
    if custom_fields is not None:
        merged = {**customer.custom_fields, **custom_fields}
        cleaned = custom_fields_clean({k: v for k, v in merged.items() if v not in (None, "")})
        if cleaned != customer.custom_fields:
            before["custom_fields"] = customer.custom_fields
            customer.custom_fields = cleaned
            update_fields.append("custom_fields")
    customer.full_clean(exclude=["phone", "custom_fields", "tags"], validate_unique=False)
    if update_fields:
        customer.save(update_fields=[*update_fields, "updated_at"])
    if rescoped and not _sees(actor, customer):
        # Handing a card over to another store is an administrator's act, not an edit's side
        # effect; the atomic block rolls the save back.
        raise ValidationError(
            {"home_store": [_("After this change you would no longer see the card.")]}
        )
    if numbers is not None:
        old_numbers = [p.number for p in customer.phones.all()]
        if old_numbers != numbers:
            before["phones"] = old_numbers
            _set_phones(customer, numbers)
            update_fields.append("phones")
    if update_fields:
        after = _snapshot(
            customer, [f for f in update_fields if f not in {"phones", "custom_fields"}]
        )
        if "phones" in update_fields:
            after["phones"] = numbers
        if "custom_fields" in update_fields:
            after["custom_fields"] = customer.custom_fields
        audit_record(
            actor=actor,
            action=AuditAction.CUSTOMER_UPDATE,
            obj=customer,
            request=request,
            before=before,
            after=after,
        )
    return customer


def _sees(actor, customer: Customer) -> bool:
    """Whether a staff actor sees the card (a till or a system actor has no scope to keep)."""
    if not getattr(actor, "is_authenticated", False) or getattr(actor, "is_pos_client", False):
        return False
    from customers.access import visible_customers

    return visible_customers(actor).filter(pk=customer.pk).exists()


def _differs(customer: Customer, name: str, value: Any) -> bool:
    if name in _FK_FIELDS:
        current = getattr(customer, f"{name}_id")
        return current != (value.pk if hasattr(value, "pk") else value)
    return getattr(customer, name) != value


@transaction.atomic
def consent_set(
    *,
    customer: Customer,
    channel: str,
    granted: bool,
    source: str,
    actor=None,
    at: dt.datetime | None = None,
    note: str = "",
    method: str = "",
) -> ConsentEvent | None:
    """Record a grant or withdrawal for one channel; no event when nothing changes."""
    if channel not in Channel.values:
        raise ValidationError({"channel": [_("Unknown channel %(c)s.") % {"c": channel}]})
    if method not in ConsentMethod.values:
        raise ValidationError({"method": [_("Unknown way of agreeing %(m)s.") % {"m": method}]})
    field = f"consent_{channel}"
    # Lock the row: an unsubscribe and a staff edit racing must both land in the history.
    current, withdrawn_at, erased_at = (
        Customer.objects.select_for_update()
        .values_list(field, "processing_withdrawn_at", "erased_at")
        .get(pk=customer.pk)
    )
    if current == granted:
        return None
    if granted and (withdrawn_at or erased_at):
        # No mailing to someone who withdrew consent to processing (customers.privacy).
        raise ValidationError(
            {"channel": [_("Consent to processing is withdrawn: no mailing consent can be given.")]}
        )
    event = ConsentEvent.objects.create(
        customer=customer,
        channel=channel,
        granted=granted,
        at=at or timezone.now(),
        source=source,
        method=method,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        note=note,
    )
    Customer.objects.filter(pk=customer.pk).update(**{field: granted, "updated_at": timezone.now()})
    setattr(customer, field, granted)
    audit_record(
        actor=actor,
        action=AuditAction.CONSENT_CHANGE,
        obj=customer,
        channel=channel,
        granted=granted,
        source=source,
    )
    return event


@transaction.atomic
def contact_record(
    *,
    actor,
    customer: Customer,
    channel: str,
    direction: str,
    topic: str,
    at: dt.datetime | None = None,
    outcome: str = "",
    agreement: str = "",
    next_step: str = "",
    due_date: dt.date | None = None,
    store=None,
) -> Contact:
    """Log one contact with a customer, with what was agreed and the follow-up it calls for."""
    if customer.erased_at is not None:
        raise ValidationError(_("This customer's personal data has been erased."))
    contact = Contact(
        customer=customer,
        staff=actor if getattr(actor, "is_authenticated", False) else None,
        store=store,
        at=at or timezone.now(),
        channel=channel,
        direction=direction,
        topic=topic,
        outcome=outcome,
        agreement=agreement,
        next_step=next_step,
        due_date=due_date,
    )
    if due_date and not next_step:
        raise ValidationError({"next_step": [_("Say what should be done by the due date.")]})
    contact.full_clean()
    contact.save()
    return contact


@transaction.atomic
def contact_complete(*, actor, contact: Contact) -> Contact:
    """Mark a contact's follow-up as done."""
    if contact.done_at is None:
        contact.done_at = timezone.now()
        contact.save(update_fields=["done_at"])
    return contact


def name_tokens_prune(*, names: Iterable[tuple[str, str]] | None = None) -> int:
    """Remove from the search dictionary (NameToken) names no card carries any more.

    `names` limits it to (kind, folded name) pairs, e.g. the names of a card just erased, so that
    an erased person's rare surname does not outlive them there; without it the whole dictionary
    is checked (each name by an index probe on the folded names).
    """
    from django.db import connection

    pairs = sorted(set(names)) if names is not None else []
    if names is not None and not pairs:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM customers_nametoken t WHERE ("
            "(t.kind = 's' AND NOT EXISTS (SELECT 1 FROM customers_customer c "
            "WHERE TRANSLATE(UPPER(c.surname), 'Ё', 'Е') = t.token)) OR "
            "(t.kind = 'f' AND NOT EXISTS (SELECT 1 FROM customers_customer c "
            "WHERE TRANSLATE(UPPER(c.first_name), 'Ё', 'Е') = t.token))) "
            "AND (%s OR (t.kind, t.token) IN (SELECT * FROM unnest(%s::text[], %s::text[])))",
            [names is None, [k for k, _ in pairs], [t for _, t in pairs]],
        )
        return cursor.rowcount
