"""Writes for the customer's own rights: consent to processing, withdrawal, subject access, erasure.

Every door (the card, the new-card form, the POS API, the customer's signed link, the admin,
Celery beat, and import) calls these, so the legal record and the audit are written once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.audit import audit_record
from crm.models import AuditAction, AuditEvent

from ..folding import fold
from ..models import Channel, ConsentEvent, Contact, Customer, NameToken, Source
from ..services import consent_set, name_tokens_prune
from .models import ConsentMethod, ProcessingConsent, ProcessingConsentDocument
from .models import SubjectAccessRequest as SAR
from .selectors import processing_document_current, working_days_after


class ErasureBasis:
    """Why a person was erased; a closed list, so the audit never holds free text about them."""

    WITHDRAWAL = "withdrawal"
    REQUEST = "request"
    RETENTION = "retention"
    ADMIN_DELETE = "admin_delete"
    CHOICES = [
        (WITHDRAWAL, gettext_lazy("Consent to processing withdrawn")),
        (REQUEST, gettext_lazy("The customer asked to destroy their data")),
        (RETENTION, gettext_lazy("Retention term expired")),
        (ADMIN_DELETE, gettext_lazy("Deleted in the admin")),
    ]


_SOURCE_FOR_METHOD = {
    ConsentMethod.PAPER: Source.WEB,
    ConsentMethod.WEB_FORM: Source.WEB,
    ConsentMethod.IMPORT: Source.IMPORT,
    ConsentMethod.TILL_SCREEN: Source.POS,
    ConsentMethod.LINK: Source.UNSUBSCRIBE,
    ConsentMethod.API: Source.API,
}


GRANT_METHODS = {
    ConsentMethod.PAPER,
    ConsentMethod.WEB_FORM,
    ConsentMethod.IMPORT,
    ConsentMethod.TILL_SCREEN,
    ConsentMethod.API,
}


WITHDRAW_SALT = "customers.privacy.withdraw"


def withdrawal_token(customer: Customer) -> str:
    """The customer's own signed link token: it names the card and nothing else."""
    return signing.Signer(salt=WITHDRAW_SALT).sign(str(customer.pk))


def withdrawal_url(customer: Customer) -> str:
    return f"{settings.CLIENTELE_SITE_URL}/privacy/withdraw/{withdrawal_token(customer)}/"


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def _locked(customer: Customer) -> Customer:
    return Customer.objects.select_for_update().get(pk=customer.pk)


@transaction.atomic
def processing_consent_record(
    *,
    customer: Customer,
    actor,
    method: str,
    document: ProcessingConsentDocument | None = None,
    at: dt.datetime | None = None,
    paper_number: str = "",
    scan=None,
    import_source: str = "",
    store=None,
    note: str = "",
    request=None,
) -> ProcessingConsent:
    """Record the customer's consent to processing under a document version (current by default).

    Import calls this with `method="import"` and its `import_source`; a paper form needs its
    number or a scan. Consent given again after a withdrawal cancels the scheduled erasure.
    """
    errors: dict[str, list[str]] = {}
    if method not in GRANT_METHODS:
        errors["method"] = [_("Choose how the consent was given.")]
    if method == ConsentMethod.PAPER and not (paper_number.strip() or scan):
        errors["paper_number"] = [_("A paper consent needs the form's number or its scan.")]
    if method == ConsentMethod.IMPORT and not import_source.strip():
        errors["import_source"] = [_("Name the source the consent was imported from.")]
    document = document or processing_document_current()
    if document is None:
        errors["document"] = [_("No consent document is in force; an admin must add one.")]
    elif document.effective_from > timezone.localdate():
        errors["document"] = [_("This version of the consent is not in force yet.")]
    if errors:
        raise ValidationError(errors)
    row = _locked(customer)
    if row.erased_at is not None:
        raise ValidationError(_("This customer's personal data has been erased."))
    at = at or timezone.now()
    consent = ProcessingConsent(
        customer=row,
        document=document,
        granted=True,
        at=at,
        method=method,
        paper_number=paper_number.strip(),
        import_source=import_source.strip(),
        taken_by=_user(actor),
        store=store,
        note=note,
    )
    if scan:
        consent.scan = scan
    consent.full_clean(exclude=["customer", "document", "taken_by", "store"])
    consent.save()
    fields = {
        "processing_document": document,
        "processing_consent_at": at,
        "processing_withdrawn_at": None,
        "erasure_due_at": None,
    }
    Customer.objects.filter(pk=row.pk).update(**fields, updated_at=timezone.now())
    for name, value in fields.items():
        setattr(customer, name, value)
    audit_record(
        actor=actor,
        action=AuditAction.PROCESSING_CONSENT,
        obj=customer,
        request=request,
        version=document.version,
        method=method,
    )
    return consent


@transaction.atomic
def processing_consent_withdraw(
    *,
    customer: Customer,
    actor,
    method: str,
    at: dt.datetime | None = None,
    request=None,
) -> ProcessingConsent | None:
    """Withdraw consent to processing: every mailing consent goes at once, erasure is scheduled.

    Campaign sending checks consent per channel at send time, so a campaign already running
    skips the person from the next message on. A second withdrawal changes nothing.
    """
    row = _locked(customer)
    if row.erased_at is not None or row.processing_withdrawn_at is not None:
        return None
    at = at or timezone.now()
    document = row.processing_document or processing_document_current()
    consent = None
    # With no document ever in force there is no consent row to close, but the withdrawal
    # still stops the mailings and schedules the erasure.
    if document is not None:
        consent = ProcessingConsent.objects.create(
            customer=row,
            document=document,
            granted=False,
            at=at,
            method=method,
            taken_by=_user(actor),
        )
    source = _SOURCE_FOR_METHOD.get(method, Source.WEB)
    for channel in Channel.values:
        consent_set(
            customer=row,
            channel=channel,
            granted=False,
            source=source,
            actor=actor,
            at=at,
        )
    due = at + dt.timedelta(days=settings.CLIENTELE_ERASURE_GRACE_DAYS)
    Customer.objects.filter(pk=row.pk).update(
        processing_withdrawn_at=at, erasure_due_at=due, updated_at=timezone.now()
    )
    customer.processing_withdrawn_at = at
    customer.erasure_due_at = due
    for channel in Channel.values:
        setattr(customer, f"consent_{channel}", False)
    audit_record(
        actor=actor,
        action=AuditAction.PROCESSING_WITHDRAWN,
        obj=customer,
        request=request,
        method=method,
        erasure_due=due.isoformat(),
    )
    return consent


@transaction.atomic
def subject_access_request_record(
    *, customer: Customer, actor, received_on: dt.date | None = None, note: str = ""
) -> SAR:
    """Register a subject-access request; the answer is due in the legal number of working days."""
    if not actor.has_perm("customers.answer_subject_access"):
        raise PermissionDenied(_("You may not answer subject-access requests."))
    received_on = received_on or timezone.localdate()
    if received_on > timezone.localdate():
        raise ValidationError({"received_on": [_("A request cannot come from the future.")]})
    return SAR.objects.create(
        customer=customer,
        received_on=received_on,
        due_on=working_days_after(received_on, settings.CLIENTELE_SUBJECT_ACCESS_DAYS),
        received_by=_user(actor),
        note=note,
    )


@transaction.atomic
def subject_access_answer(
    *, customer: Customer, actor, request=None, sar: SAR | None = None
) -> tuple[bytes, str]:
    """Build the subject-access file, mark the open request answered and audit it.

    Returns the XLSX bytes and their SHA-256. Without an open request one is recorded as
    received and answered today (a request made in person at the desk).
    """
    import hashlib

    from .subject_access import subject_access_xlsx

    if not actor.has_perm("customers.answer_subject_access"):
        raise PermissionDenied(_("You may not answer subject-access requests."))
    if customer.erased_at is not None:
        raise ValidationError(_("This customer's personal data has been erased."))
    content = subject_access_xlsx(customer=customer)
    digest = hashlib.sha256(content).hexdigest()
    if sar is None:
        sar = customer.subject_access_requests.filter(answered_at__isnull=True).first()
    if sar is None:
        sar = subject_access_request_record(customer=customer, actor=actor)
    sar.answered_at = timezone.now()
    sar.answered_by = _user(actor)
    sar.file_sha256 = digest
    sar.save(update_fields=["answered_at", "answered_by", "file_sha256"])
    audit_record(
        actor=actor,
        action=AuditAction.SUBJECT_ACCESS,
        obj=customer,
        request=request,
        request_id=sar.pk,
        sha256=digest,
    )
    return content, digest


# --- erasure ---------------------------------------------------------------------------------


def _identifiers(customer: Customer) -> tuple[list[str], list[str]]:
    """Strings that name the person: (unambiguous ones, bare names).

    Phones, emails, the card and the full name are theirs alone; a bare surname or first name
    may be someone else's too, so it is scrubbed only where no other customer is concerned.
    """
    values = {customer.email, customer.card_number or "", *customer.extra_emails}
    for number in customer.phones.values_list("number", flat=True):
        values.update({number, number.lstrip("+")})
        if number.startswith("+7"):
            values.update({"8" + number[2:], number[2:]})
    if customer.surname and customer.first_name:
        values.add(f"{customer.surname} {customer.first_name}")
        values.add(f"{customer.first_name} {customer.surname}")
    values.add(customer.full_name)
    names = {customer.surname, customer.first_name, customer.patronymic}
    strong = sorted(v for v in values if v and len(v) >= 5)
    return strong, sorted(v for v in names if v and len(v) >= 3)


def _scrub(value: Any, needles: Iterable[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            if needle.lower() in value.lower():
                return "[erased]"
        return value
    if isinstance(value, list):
        return [_scrub(v, needles) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, needles) for k, v in value.items()}
    return value


def _scrub_audit(customer: Customer, pseudonym: str, strong: list[str], names: list[str]) -> int:
    """Earlier audit rows keep who did what, but no longer what the person's data was.

    Rows about the person lose their details; other rows lose every string naming them
    (an export's search filter, a merge report); rows about another customer lose only the
    unambiguous identifiers, so a namesake's history stays intact.
    """
    about = AuditEvent.objects.filter(object_type="customers.customer", object_id=str(customer.pk))
    changed = about.update(details={"erased": pseudonym})
    mention = Q()
    for needle in [*strong, *names]:
        # jsonb has no icontains of its own: Django compares its text, which is what we want.
        mention |= Q(details__icontains=needle)
    if strong or names:
        for event in AuditEvent.objects.filter(mention).exclude(pk__in=about.values("pk")):
            other_customer = event.object_type == "customers.customer"
            details = _scrub(event.details, strong if other_customer else [*strong, *names])
            if details != event.details:
                event.details = details
                event.save(update_fields=["details"])
                changed += 1
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
    )
    entries.update(object_repr=pseudonym, change_message="")
    return changed


def new_pseudonym() -> str:
    """A random id, not derived from anything about the person (a hash of a phone could be
    reversed by hashing every phone number)."""
    return "ANON-" + secrets.token_hex(6).upper()


@transaction.atomic
def customer_erase(*, customer: Customer, actor, basis: str, request=None) -> Customer:
    """Anonymise the person irreversibly; receipts, returns and metrics stay under a pseudonym.

    Names, phones, emails, addresses, birth date, free text, custom fields, tags, family dates,
    contact-log text and the consent scan are destroyed, the loyalty card is detached, and the
    audit log keeps only the pseudonymous id. `actor=None` is the scheduled erasure (Celery).
    """
    if actor is not None and not actor.has_perm("customers.erase_customer"):
        raise PermissionDenied(_("You may not erase personal data."))
    if basis not in {code for code, _label in ErasureBasis.CHOICES}:
        raise ValidationError({"basis": [_("Choose the basis of the erasure.")]})
    row = _locked(customer)
    if row.erased_at is not None:
        raise ValidationError(_("This customer's personal data has already been erased."))
    strong, names = _identifiers(row)
    pseudonym = new_pseudonym()
    now = timezone.now()
    for consent in row.processing_consents.exclude(scan=""):
        consent.scan.delete(save=False)
    row.processing_consents.update(scan="", note="")
    ConsentEvent.objects.filter(customer=row).update(note="")
    # Open follow-ups close: nobody may call an erased person back.
    Contact.objects.filter(customer=row).update(
        topic="", outcome="", agreement="", next_step="", due_date=None
    )
    Contact.objects.filter(customer=row, done_at__isnull=True).update(done_at=now)
    row.phones.all().delete()
    row.important_dates.all().delete()
    row.tags.clear()
    row.subject_access_requests.update(note="")
    # Message rows of campaigns (a higher app) through the reverse relation: provider errors
    # may quote the address; queued messages are skipped at send time because erased_at is set.
    row.campaign_messages.update(last_error="", provider_id="")
    blank = {
        "surname": "",
        "first_name": "",
        "patronymic": "",
        "gender": "",
        "birth_date": None,
        "phone": "",
        "email": "",
        "extra_emails": [],
        "card_number": None,
        "postal_code": "",
        "city": "",
        "address": "",
        "workplace": "",
        "position": "",
        "marital_status": "",
        "children_count": None,
        "interests": "",
        "preferences": "",
        "notes": "",
        "custom_fields": {},
        **{f"consent_{channel}": False for channel in Channel.values},
        "do_not_contact": True,
        "erased_at": now,
        "erasure_due_at": None,
        "pseudonym": pseudonym,
    }
    if row.processing_withdrawn_at is None:
        blank["processing_withdrawn_at"] = now
    Customer.objects.filter(pk=row.pk).update(**blank, updated_at=now)
    # The search dictionary keeps a name only while some card carries it.
    name_tokens_prune(
        names=[(NameToken.SURNAME, fold(row.surname)), (NameToken.FIRST_NAME, fold(row.first_name))]
    )
    _scrub_audit(row, pseudonym, strong, names)
    row.refresh_from_db()
    audit_record(
        actor=actor,
        actor_name="" if actor is not None else "celery",
        action=AuditAction.CUSTOMER_ERASE,
        obj=row,
        request=request,
        pseudonym=pseudonym,
        basis=basis,
    )
    return row


def erase_due(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Erase customers whose grace period after a withdrawal has passed (beat, nightly).

    Each erasure is its own transaction, so one failure does not undo the others.
    """
    now = now or timezone.now()
    ids = list(
        Customer.objects.filter(erasure_due_at__lte=now, erased_at__isnull=True).values_list(
            "pk", flat=True
        )[:limit]
    )
    done = 0
    for pk in ids:
        customer = Customer.objects.get(pk=pk)
        customer_erase(customer=customer, actor=None, basis=ErasureBasis.WITHDRAWAL)
        done += 1
    return done


def customers_erase_bulk(*, actor, customer_ids: list[int], basis: str, request=None) -> int:
    """Anonymise the customers an admin picked on the retention review, one transaction each."""
    if not actor.has_perm("customers.erase_customer"):
        raise PermissionDenied(_("You may not erase personal data."))
    done = 0
    for customer in Customer.objects.filter(pk__in=customer_ids, erased_at__isnull=True):
        customer_erase(customer=customer, actor=actor, basis=basis, request=request)
        done += 1
    return done


def record_from_api(*, customer: Customer, user, data: dict, request) -> None:
    """Record consent sent to the API (validated `ProcessingConsentInputSerializer` data);
    a till (POS key) is not a person, so its store and key name stand for "taken by"."""
    is_pos = getattr(user, "is_pos_client", False)
    default = ConsentMethod.TILL_SCREEN if is_pos else ConsentMethod.API
    processing_consent_record(
        customer=customer,
        actor=None if is_pos else user,
        method=data.get("method") or default,
        document=data.get("version"),
        paper_number=data.get("paper_number", ""),
        store=user.store if is_pos else customer.home_store,
        note=f"POS {user.get_username()}" if is_pos else "",
        request=request,
    )
