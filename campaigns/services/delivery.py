"""Materialising and sending messages, exactly once even when a worker dies.

The life of a message row::

    pending --claim--> claimed --gate--> sending --send ok--> sent
       ^                  |                 |  \\--transient error--> deferred (retry) / failed
       |                  |                 \\--permanent error--> failed
       |                  |--quiet hours--> deferred --until passes--> (claimable again)
       |                  \\--consent, do-not-contact, erased, cap--> skipped
    holdout (never sent)             sending, lease expired --> unknown (never resent)

- **Materialise**: one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` over the compiled
  segment, so a rerun or an overlapping trigger adds nothing twice; the holdout is chosen by
  a hash of (campaign id, customer id), so it is the same on every run.
- **Claim**: a conditional ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``
  hands a batch to one worker with a lease (``claimed_at`` + ``claimed_by``); claims whose lease
  expired (their worker died) are claimable again.
- **Gate and mark**: per message, one short transaction re-checks consent, do-not-contact,
  erasure and the frequency cap (under a per-customer advisory lock, so two campaigns sending at
  once cannot both take the customer's last slot) and commits ``sending``; the same transaction
  records the outcome of the previous message, so each message costs one commit.
- **Send** happens after that commit. SMTP offers no idempotency, so the send and the commit
  that records it cannot be atomic. The design keeps the only uncertain case on the safe side:
  a row still ``sending`` when its lease expires belonged to a dead worker that may or may not
  have handed it over; it becomes ``unknown`` and is never resent automatically (at most one such
  row per worker process killed). Every other row is sent at most once, and every row that is
  ``sent`` reached the provider. The Message-ID header (and the gateways' Idempotency-Key)
  carries the message's own id, so an operator can look an ``unknown`` row up at the provider.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from campaigns.channels import PermanentError, TransientError, get_backend
from campaigns.models import Campaign, CampaignStatus, MessageState, SkipReason
from campaigns.services import render as rendering
from campaigns.services.rules import ADDRESS_FIELD, cap, quiet_until

log = logging.getLogger(__name__)

OPEN_STATES = ("pending", "claimed", "sending", "deferred")
ADVISORY_CLASS = 7301


def worker_id(suffix: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{suffix}"[:100]


def contactable(channel: str) -> Q:
    """Customers a message on `channel` may reach right now."""
    return Q(
        **{f"consent_{channel}": True},
        do_not_contact=False,
        erased_at__isnull=True,
    ) & ~Q(**{ADDRESS_FIELD[channel]: ""})


def materialise(
    *,
    campaign: Campaign,
    occasion: str,
    customers: QuerySet,
    offer_holiday: str = "",
    now: dt.datetime | None = None,
) -> int:
    """Create the message rows of one run of `campaign` in one statement; returns how many."""
    from analytics.models import HolidayAffinity

    rows = customers.filter(contactable(campaign.channel)).order_by()
    if offer_holiday:
        rows = rows.annotate(
            offer=Subquery(
                HolidayAffinity.objects.filter(
                    customer=OuterRef("pk"), holiday=offer_holiday
                ).values("category")[:1]
            )
        )
        select, params = rows.values("id", "offer").query.sql_with_params()
        offer = "s.offer"
    else:
        select, params = rows.values("id").query.sql_with_params()
        offer = "NULL::bigint"
    threshold = int(campaign.holdout_share * 2**32)
    sql = f"""
        INSERT INTO campaigns_message
            (campaign_id, customer_id, occasion, channel, is_marketing, state, skip_reason,
             attempts, last_error, claimed_by, provider_id, created_at, offer_category_id)
        SELECT %s, s.id, %s, %s, %s,
               CASE WHEN ('x' || substr(md5(%s::text || ':' || s.id::text), 1, 8))::bit(32)::bigint
                         < %s THEN 'holdout' ELSE 'pending' END,
               '', 0, '', '', '', %s, {offer}
        FROM ({select}) s
        ON CONFLICT (campaign_id, customer_id, occasion) DO NOTHING
    """  # noqa: S608 - the inner SELECT is Django-compiled; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                campaign.pk,
                occasion,
                campaign.channel,
                campaign.is_marketing,
                campaign.pk,
                threshold,
                now or timezone.now(),
                *params,
            ],
        )
        return cursor.rowcount


def claim(*, campaign_id: int, worker: str, limit: int) -> list[int]:
    """Take up to `limit` sendable messages of a campaign for `worker`, oldest first."""
    lease = settings.CLIENTELE_CAMPAIGN_LEASE_SECONDS
    with connection.cursor() as cursor:
        # A row still `sending` after its lease belonged to a worker that died mid-send.
        cursor.execute(
            """
            UPDATE campaigns_message SET state = 'unknown', claimed_by = ''
            WHERE campaign_id = %s AND state = 'sending'
              AND claimed_at < clock_timestamp() - make_interval(secs => %s)
            """,
            [campaign_id, lease],
        )
        cursor.execute(
            """
            UPDATE campaigns_message
            SET state = 'claimed', claimed_at = clock_timestamp(), claimed_by = %s
            WHERE id IN (
                SELECT id FROM campaigns_message
                WHERE campaign_id = %s AND state IN ('pending', 'deferred', 'claimed')
                  AND (state = 'pending'
                       OR (state = 'deferred' AND deferred_until <= clock_timestamp())
                       OR (state = 'claimed'
                           AND claimed_at < clock_timestamp() - make_interval(secs => %s)))
                ORDER BY id LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            [worker, campaign_id, lease, limit],
        )
        return sorted(row[0] for row in cursor.fetchall())


RECIPIENTS_SQL = """
    SELECT m.id, m.customer_id, m.channel, c.email, c.phone, c.first_name, c.patronymic,
           c.surname, coalesce(s.name, ''), coalesce(s.city, ''), coalesce(s.timezone, %s),
           coalesce(cm.favourite_categories -> 0 ->> 'name', ''), coalesce(oc.name, ''),
           c.birth_date
    FROM campaigns_message m
    JOIN customers_customer c ON c.id = m.customer_id
    LEFT JOIN sales_store s ON s.id = c.home_store_id
    LEFT JOIN analytics_customermetrics cm ON cm.customer_id = c.id
    LEFT JOIN sales_category oc ON oc.id = m.offer_category_id
    WHERE m.id = ANY(%s)
    ORDER BY m.id
"""


def load_recipients(message_ids: list[int]) -> list[rendering.Recipient]:
    """What the templates may use about each message's customer, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(RECIPIENTS_SQL, [settings.TIME_ZONE, message_ids])
        rows = cursor.fetchall()
    recipients = []
    for row in rows:
        channel = row[2]
        recipients.append(
            rendering.Recipient(
                message_id=row[0],
                customer_id=row[1],
                channel=channel,
                address=row[3] if channel == "email" else row[4],
                first_name=row[5],
                patronymic=row[6],
                surname=row[7],
                store=row[8],
                store_city=row[9],
                store_timezone=str(row[10]),
                favourite_category=row[11],
                offer_category=row[12],
                birthday=row[13].strftime("%d.%m") if row[13] else "",
            )
        )
    return recipients


@dataclass
class Outcome:
    message_id: int
    ok: bool
    provider_id: str = ""
    error: str = ""
    transient: bool = False


Statement = tuple[str, list]


def _record(outcome: Outcome, worker: str) -> Statement:
    """The UPDATE that records how handing a message to the provider went."""
    if outcome.ok:
        return (
            """
            UPDATE campaigns_message SET state = 'sent', provider_id = %s, last_error = ''
            WHERE id = %s AND state = 'sending' AND claimed_by = %s
            """,
            [outcome.provider_id[:200], outcome.message_id, worker],
        )
    return (
        """
        UPDATE campaigns_message
        SET state = CASE WHEN %s AND attempts < %s THEN 'deferred' ELSE 'failed' END,
            deferred_until = clock_timestamp()
                + make_interval(secs => least(3600, 30 * power(2, attempts))),
            sent_at = NULL, last_error = %s
        WHERE id = %s AND state IN ('sending', 'claimed') AND claimed_by = %s
        """,
        [
            outcome.transient,
            settings.CLIENTELE_CAMPAIGN_MAX_ATTEMPTS,
            outcome.error[:2000],
            outcome.message_id,
            worker,
        ],
    )


def _gate(*, message_id: int, customer_id: int, channel: str, marketing: bool, worker: str):
    """Statements that commit `sending` only if every send-time rule holds (`gate_id` back).

    The advisory lock is taken by its own statement, before the gate's, so the gate's snapshot
    (one per statement in READ COMMITTED) sees the other campaigns' latest sends.
    """
    limit, days = cap()
    statements: list[Statement] = []
    if marketing:
        statements.append(
            (
                "SELECT pg_advisory_xact_lock(%s, (%s %% 2147483647)::int)",
                [ADVISORY_CLASS, customer_id],
            )
        )
    address = ADDRESS_FIELD[channel]
    cap_sql = f"""
        (SELECT count(*) FROM campaigns_message x
         WHERE x.customer_id = m.customer_id AND x.is_marketing AND x.sent_at IS NOT NULL
           AND x.sent_at > clock_timestamp() - make_interval(days => {int(days)})
           AND x.state IN ('sending', 'sent', 'unknown'))
    """  # noqa: S608 - only an int is formatted in
    statements.append(
        (
            f"""
            UPDATE campaigns_message m
            SET state = 'sending', claimed_at = clock_timestamp(), sent_at = clock_timestamp(),
                attempts = m.attempts + 1
            FROM customers_customer c
            WHERE m.id = %s AND m.state = 'claimed' AND m.claimed_by = %s
              AND c.id = m.customer_id
              AND c.consent_{channel} AND NOT c.do_not_contact AND c.erased_at IS NULL
              AND c.{address} <> ''
              AND (NOT m.is_marketing OR {cap_sql} < %s)
            RETURNING m.id AS gate_id
            """,  # noqa: S608 - channel and column come from fixed choices
            [message_id, worker, limit],
        )
    )
    return statements


def _run(statements: list[Statement]) -> bool:
    """Execute statements in one round trip and one transaction; True if a gate let through.

    A multi-statement query is one implicit transaction in PostgreSQL, so the previous
    message's outcome, the lock and this message's `sending` commit together with a single
    WAL flush: one durable commit per message, which is what bounds the send rate.
    """
    if not statements:
        return False
    sql = ";\n".join(sql for sql, _ in statements)
    params = [p for _, ps in statements for p in ps]
    passed = False
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            description = cursor.description
            if description and description[0].name == "gate_id" and cursor.fetchone():
                passed = True
            if not cursor.nextset():
                break
    return passed


def _skip_reason(*, message_id: int, channel: str, worker: str) -> None:
    """Record why the gate refused a message (rare, so a separate short transaction)."""
    address = ADDRESS_FIELD[channel]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT m.state, m.claimed_by, c.do_not_contact, c.erased_at IS NOT NULL,
                   c.consent_{channel}, c.{address} <> ''
            FROM campaigns_message m JOIN customers_customer c ON c.id = m.customer_id
            WHERE m.id = %s FOR UPDATE OF m
            """,  # noqa: S608 - channel and column come from fixed choices
            [message_id],
        )
        state, owner, dnc, erased, consent, has_address = cursor.fetchone()
        if state != MessageState.CLAIMED or owner != worker:
            return  # our lease expired and another worker has it
        reason = (
            SkipReason.ERASED
            if erased
            else SkipReason.DO_NOT_CONTACT
            if dnc
            else SkipReason.NO_CONSENT
            if not consent
            else SkipReason.NO_ADDRESS
            if not has_address
            else SkipReason.FREQUENCY_CAP
        )
        cursor.execute(
            "UPDATE campaigns_message SET state = 'skipped', skip_reason = %s WHERE id = %s",
            [reason, message_id],
        )


def _defer(*, message_id: int, until: dt.datetime, worker: str) -> Statement:
    return (
        """
        UPDATE campaigns_message SET state = 'deferred', deferred_until = %s
        WHERE id = %s AND state = 'claimed' AND claimed_by = %s
        """,
        [until, message_id, worker],
    )


def send_batch(*, campaign: Campaign, message_ids: list[int], worker: str, backend) -> int:
    """Gate, send and record each claimed message; returns how many were sent."""
    sent = 0
    previous: Outcome | None = None
    for recipient in load_recipients(message_ids):
        statements: list[Statement] = []
        if previous is not None:
            statements.append(_record(previous, worker))
            previous = None
        until = quiet_until(timezone.now(), recipient.store_timezone)
        if until is not None:
            statements.append(_defer(message_id=recipient.message_id, until=until, worker=worker))
            _run(statements)
            continue
        try:
            outgoing = rendering.render(
                campaign,
                recipient,
                idempotency_key=f"<clientele.{campaign.pk}.{recipient.message_id}"
                f"@{settings.CLIENTELE_MESSAGE_ID_DOMAIN}>",
                unsubscribe=rendering.unsubscribe_url(recipient.message_id),
            )
        except Exception as error:  # noqa: BLE001 - any template failure fails this message
            failure = Outcome(recipient.message_id, ok=False, error=f"template: {error!r}")
            _run([*statements, _record(failure, worker)])
            continue
        statements += _gate(
            message_id=recipient.message_id,
            customer_id=recipient.customer_id,
            channel=campaign.channel,
            marketing=campaign.is_marketing,
            worker=worker,
        )
        if not _run(statements):
            _skip_reason(message_id=recipient.message_id, channel=campaign.channel, worker=worker)
            continue
        try:
            provider_id = backend.send(outgoing)
        except TransientError as error:
            previous = Outcome(recipient.message_id, ok=False, error=str(error), transient=True)
        except PermanentError as error:
            previous = Outcome(recipient.message_id, ok=False, error=str(error))
        else:
            previous = Outcome(recipient.message_id, ok=True, provider_id=provider_id)
            sent += 1
    if previous is not None:
        _run([_record(previous, worker)])
    return sent


def send_some(*, campaign_id: int, worker: str, max_seconds: float = 30.0) -> bool:
    """Send a campaign's claimable messages for up to `max_seconds`; True if work is left now."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status not in (CampaignStatus.SENDING, CampaignStatus.ACTIVE):
        return False
    deadline = time.monotonic() + max_seconds
    backend = get_backend(campaign.channel)
    backend.open()
    try:
        while time.monotonic() < deadline:
            ids = claim(
                campaign_id=campaign.pk, worker=worker, limit=settings.CLIENTELE_CAMPAIGN_BATCH
            )
            if not ids:
                campaign_finish_if_done(campaign_id=campaign.pk)
                return False
            send_batch(campaign=campaign, message_ids=ids, worker=worker, backend=backend)
    finally:
        backend.close()
    return True


def campaign_finish_if_done(*, campaign_id: int) -> bool:
    """Mark a one-off campaign done once no message of it is left to send."""
    from campaigns.models import Message

    open_work = Message.objects.filter(campaign_id=campaign_id, state__in=OPEN_STATES)
    updated = (
        Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING)
        .filter(~Exists(open_work))
        .update(status=CampaignStatus.DONE, finished_at=timezone.now())
    )
    return bool(updated)


def has_claimable(*, campaign_id: int) -> bool:
    """Whether a send task would find work for this campaign right now."""
    lease = dt.timedelta(seconds=settings.CLIENTELE_CAMPAIGN_LEASE_SECONDS)
    from campaigns.models import Message

    now = timezone.now()
    return Message.objects.filter(
        Q(state="pending")
        | Q(state="deferred", deferred_until__lte=now)
        | Q(state__in=["claimed", "sending"], claimed_at__lt=now - lease),
        campaign_id=campaign_id,
    ).exists()
