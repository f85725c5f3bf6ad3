"""Writes of segments and campaigns: save, freeze, start, pause, test send, unsubscribe."""

from __future__ import annotations

import datetime as dt
import logging

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.channels import DeliveryError, get_backend
from campaigns.models import (
    Campaign,
    CampaignKind,
    CampaignStatus,
    Message,
    MessageState,
    Segment,
)
from campaigns.services import render as rendering
from campaigns.services.delivery import load_recipients, materialise
from campaigns.services.segments import clean_rules, segment_customers
from campaigns.services.triggers import campaign_customers, run_trigger
from crm.audit import audit_record
from crm.models import AuditAction
from crm.tasks import enqueue

log = logging.getLogger(__name__)


@transaction.atomic
def segment_save(
    *, actor, name: str, rules: dict, description: str = "", segment: Segment | None = None
) -> Segment:
    """Create or update a segment from a validated rule tree."""
    rules = clean_rules(rules)
    if not name.strip():
        raise ValidationError({"name": [_("A segment needs a name.")]})
    if segment is None:
        segment = Segment(owner=actor if actor.is_authenticated else None)
    if segment.is_frozen:
        raise ValidationError({"rules": [_("A frozen segment cannot change its rules.")]})
    segment.name, segment.description, segment.rules = name.strip(), description, rules
    segment.save()
    return segment


@transaction.atomic
def segment_freeze(*, actor, segment: Segment) -> int:
    """Freeze the segment's current customers (as `actor` sees them) into a static list."""
    if segment.is_frozen:
        return segment.members.count()
    select, params = (
        segment_customers(user=actor, segment=segment)
        .order_by()
        .values("id")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO campaigns_segmentmember (segment_id, customer_id)
            SELECT %s, s.id FROM ({select}) s
            ON CONFLICT DO NOTHING
            """,  # noqa: S608 - the inner SELECT is Django-compiled; values are parameters
            [segment.pk, *params],
        )
        count = cursor.rowcount
    segment.frozen_at = timezone.now()
    segment.save(update_fields=["frozen_at", "updated_at"])
    return count


def campaign_validate(campaign: Campaign) -> None:
    """Field errors of a campaign that the model's own validation cannot see."""
    errors: dict[str, list] = {}
    if campaign.channel == "email":
        if not campaign.subject.strip():
            errors.setdefault("subject", []).append(_("An email needs a subject."))
        if not campaign.body_html.strip():
            errors.setdefault("body_html", []).append(_("An email needs a body."))
        for field in ("subject", "body_html"):
            problems = rendering.check_template(getattr(campaign, field))
            if problems:
                errors.setdefault(field, []).extend(problems)
    else:
        if not campaign.body_text.strip():
            errors.setdefault("body_text", []).append(_("The message needs a text."))
        problems = rendering.check_template(campaign.body_text)
        if problems:
            errors.setdefault("body_text", []).extend(problems)
    if campaign.kind == CampaignKind.HOLIDAY and not (campaign.holiday_key or campaign.chain_date):
        errors["holiday_key"] = [_("Choose a holiday or a chain date.")]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def campaign_save(*, actor, campaign: Campaign) -> Campaign:
    """Validate and save a campaign that has not started yet."""
    if campaign.pk and campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise ValidationError({"status": [_("A started campaign cannot be edited.")]})
    campaign.full_clean(exclude=["created_by", "status"])
    campaign_validate(campaign)
    if campaign.created_by_id is None:
        campaign.created_by = actor
    campaign.save()
    return campaign


def enqueue_send(campaign_id: int, copies: int = 1) -> None:
    """Queue `copies` parallel send tasks once the current transaction commits."""
    for _i in range(copies):
        enqueue("campaigns.tasks.send_campaign", campaign_id, queue=send_campaign_queue())


def send_campaign_queue() -> str:
    from django.conf import settings

    return settings.CLIENTELE_CAMPAIGN_QUEUE


@transaction.atomic
def campaign_start(*, actor, campaign: Campaign, now: dt.datetime | None = None) -> int:
    """Start a campaign: schedule it, arm its trigger, or materialise and send it now.

    Returns how many messages were created now.
    """
    from django.conf import settings

    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise ValidationError({"status": [_("This campaign has already started.")]})
    campaign_validate(campaign)
    created = 0
    if campaign.is_triggered:
        campaign.status = CampaignStatus.ACTIVE
        campaign.started_at = now
        campaign.save(update_fields=["status", "started_at"])
        created = run_trigger(campaign=campaign, today=timezone.localdate(now))
    elif campaign.scheduled_at and campaign.scheduled_at > now:
        campaign.status = CampaignStatus.SCHEDULED
        campaign.save(update_fields=["status"])
        return 0
    else:
        created = materialise(
            campaign=campaign, occasion="once", customers=campaign_customers(campaign), now=now
        )
        campaign.status, campaign.started_at = CampaignStatus.SENDING, now
        campaign.save(update_fields=["status", "started_at"])
    audit_record(actor=actor, action=AuditAction.CAMPAIGN_START, obj=campaign, messages=created)
    enqueue_send(campaign.pk, settings.CLIENTELE_CAMPAIGN_PARALLEL_TASKS)
    return created


@transaction.atomic
def campaign_pause(*, actor, campaign: Campaign) -> None:
    """Stop sending (and triggering); messages already sent stay sent."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (
        CampaignStatus.SENDING,
        CampaignStatus.ACTIVE,
        CampaignStatus.SCHEDULED,
    ):
        return
    before = campaign.status
    campaign.status = CampaignStatus.PAUSED
    campaign.save(update_fields=["status"])
    audit_record(
        actor=actor,
        action=AuditAction.CAMPAIGN_PAUSE,
        obj=campaign,
        name=campaign.name,
        before={"status": before},
        after={"status": campaign.status},
    )


@transaction.atomic
def campaign_resume(*, actor, campaign: Campaign) -> None:
    """Take a paused campaign up where it stopped: scheduled, trigger armed, or sending."""
    from django.conf import settings

    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.PAUSED:
        return
    if campaign.started_at is None:
        status = CampaignStatus.SCHEDULED if campaign.scheduled_at else CampaignStatus.DRAFT
    elif campaign.is_triggered:
        status = CampaignStatus.ACTIVE
    else:
        status = CampaignStatus.SENDING
    campaign.status = status
    campaign.save(update_fields=["status"])
    audit_record(
        actor=actor,
        action=AuditAction.CAMPAIGN_RESUME,
        obj=campaign,
        name=campaign.name,
        before={"status": CampaignStatus.PAUSED.value},
        after={"status": status},
    )
    if status == CampaignStatus.SENDING:
        enqueue_send(campaign.pk, settings.CLIENTELE_CAMPAIGN_PARALLEL_TASKS)


def preview(*, campaign: Campaign, customer) -> dict:
    """The campaign's message as `customer` would get it (nothing is stored or sent)."""
    recipient = rendering.Recipient(
        message_id=0,
        customer_id=customer.pk,
        channel=campaign.channel,
        address=customer.email if campaign.channel == "email" else customer.phone,
        first_name=customer.first_name,
        patronymic=customer.patronymic,
        surname=customer.surname,
        store=customer.home_store.name if customer.home_store_id else "",
        store_city=customer.home_store.city if customer.home_store_id else "",
        favourite_category=_favourite(customer),
        birthday=customer.birth_date.strftime("%d.%m") if customer.birth_date else "",
        points_balance=_points(customer),
    )
    outgoing = rendering.render(
        campaign, recipient, idempotency_key="<preview@clientele>", unsubscribe="#unsubscribe"
    )
    return {
        "to": outgoing.to,
        "subject": outgoing.subject,
        "html": outgoing.html,
        "text": outgoing.text,
    }


def _points(customer) -> str:
    from loyalty.models import Account

    available = Account.objects.filter(customer=customer).values_list("available", flat=True)
    return f"{(available.first() or 0):.2f}"


def _favourite(customer) -> str:
    from analytics.models import FavouriteCategories

    categories = (
        FavouriteCategories.objects.filter(customer=customer)
        .values_list("categories", flat=True)
        .first()
    )
    if categories:
        first = categories[0]
        return first.get("name", "") if isinstance(first, dict) else str(first)
    return ""


def test_addresses(*, user, channel: str) -> list[str]:
    """Where `user` may send a test of a `channel` campaign: their own email (for email) and
    the admin-kept test addresses (`CLIENTELE_TEST_ADDRESSES`) of that kind, never anyone else.

    A free "to" would mail a real customer's personalised message anywhere.
    """
    from django.conf import settings

    from customers.phones import try_normalize_phone

    email = channel == "email"
    found: list[str] = []
    if email and getattr(user, "email", ""):
        found.append(user.email.strip())
    for address in settings.CLIENTELE_TEST_ADDRESSES:
        if email and "@" in address:
            found.append(address)
        elif not email and "@" not in address:
            number = try_normalize_phone(address)
            if number:
                found.append(number)
    return list(dict.fromkeys(found))


def send_test(*, actor, campaign: Campaign, customer, to: str, request=None) -> str:
    """Send the preview for `customer` to one of the actor's test addresses; audited."""
    if to not in test_addresses(user=actor, channel=campaign.channel):
        raise ValidationError(
            {"to": [_("Tests go only to your own or the chain's test addresses.")]}
        )
    audit_record(
        actor=actor,
        action=AuditAction.CAMPAIGN_TEST_SEND,
        obj=campaign,
        request=request,
        customer=customer.pk,
        to=to,
        channel=campaign.channel,
    )
    data = preview(campaign=campaign, customer=customer)
    outgoing = rendering.render(
        campaign,
        rendering.Recipient(
            message_id=0,
            customer_id=customer.pk,
            channel=campaign.channel,
            address=to,
            first_name=customer.first_name,
            patronymic=customer.patronymic,
            surname=customer.surname,
        ),
        idempotency_key=f"<clientele.test.{campaign.pk}.{int(timezone.now().timestamp())}"
        f"@clientele.local>",
        unsubscribe="#test-send",
    )
    outgoing.subject = f"[TEST] {data['subject']}" if data["subject"] else ""
    backend = get_backend(campaign.channel)
    backend.open()
    try:
        return backend.send(outgoing)
    except DeliveryError as error:
        raise ValidationError({"to": [str(error)]}) from error
    finally:
        backend.close()


@transaction.atomic
def unsubscribe(*, token: str, at: dt.datetime | None = None) -> Message:
    """Withdraw consent for the channel of the message the token was made for, at once."""
    from customers.services import consent_set

    try:
        message_id = rendering.unsubscribe_message_id(token)
    except (signing.BadSignature, ValueError) as error:
        raise Message.DoesNotExist from error
    message = Message.objects.select_related("customer").get(pk=message_id)
    at = at or timezone.now()
    consent_set(
        customer=message.customer,
        channel=message.channel,
        granted=False,
        source="unsubscribe",
        at=at,
        note=f"campaign {message.campaign_id}",
    )
    if message.unsubscribed_at is None:
        message.unsubscribed_at = at
        message.save(update_fields=["unsubscribed_at"])
    return message


__all__ = [
    "MessageState",
    "campaign_pause",
    "campaign_save",
    "campaign_start",
    "load_recipients",
    "preview",
    "segment_freeze",
    "segment_save",
    "send_test",
    "test_addresses",
    "unsubscribe",
]
