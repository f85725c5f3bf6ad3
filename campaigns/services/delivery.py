"""Materialising and sending messages, exactly once even when a worker dies.

The life of a message row::

    pending --claim--> claimed --gate--> sending --send ok--> sent
       ^                  |                 |  \\--transient error--> deferred (retry) / failed
       |                  |                 \\--permanent error--> failed
       |                  |--quiet hours--> deferred --until passes--> (claimable again)
       |                  |--consent, do-not-contact, erased, cap--> skipped
       \\--- stop -----/
    holdout (never sent)             sending, lease expired --> unknown (never resent)

- **Materialise**: one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` over the compiled
  segment, so a rerun or an overlapping trigger adds nothing twice; the holdout is chosen by
  a hash of (campaign id, customer id), so it is the same on every run.
- **Claim**: a conditional ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``
  per claimable state hands a batch to one worker with a lease (``claimed_at`` +
  ``claimed_by``); claims whose lease expired (their worker died) are claimable again. Each
  reads only open rows (`CLAIM_SQL`), so a claim costs the same at the end of a campaign of
  100,000 as at its start.
- **Gate and mark**: per message, one short transaction re-checks consent, do-not-contact,
  erasure and the frequency cap (under a per-customer advisory lock, so two campaigns sending at
  once cannot both take the customer's last slot) and commits ``sending``; the same transaction
  records the outcome of the previous message, so each message costs one round trip and one
  durable commit. The statements are server-side prepared (`crm.pg.prepared.Prepared`):
  planning the gate for every message used to cost PostgreSQL more than running it.
- **Send** happens after that commit. SMTP offers no idempotency, so the send and the commit
  that records it cannot be atomic. The design keeps the only uncertain case on the safe side:
  a row still ``sending`` when its lease expires belonged to a dead worker that may or may not
  have handed it over; it becomes ``unknown`` and is never resent automatically. Every other
  row is sent at most once, and every row that is ``sent`` reached the provider. The
  Message-ID header (and the gateways' Idempotency-Key) carries the message's own id, so an
  operator can look an ``unknown`` row up at the provider.
- **Stop**: `send_some`/`send_batch` take a `stop` callable, asked before each message. Once it
  says yes, the previous message's outcome is recorded, the rest of the batch goes back to
  ``pending`` (claimable at once, no lease to wait for) and the run ends. The Celery task
  passes "has my worker's main process died" (campaigns.tasks.outliving_parent).

What a killed worker leaves behind, precisely (tests/campaigns/test_worker_kill.py):

- ``kill -9`` of the ``celery worker`` main process (the pid an operator sees): its prefork
  children finish the message each has in flight, record it, release their batches, queue
  the continuation and exit; the next worker sends the rest. Every message is delivered
  exactly once and no row is ``unknown``.
- A pool process itself killed (SIGKILL of the whole process group, a power cut of the
  machine, the OOM killer choosing a pool process): if it dies inside the SMTP transaction,
  its message stays ``sending``, then becomes ``unknown`` (delivered or not, never twice); its
  other claimed rows are claimable again after the lease. At most one ``unknown`` row per
  killed pool process; nothing is sent twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from campaigns.channels import PermanentError, TransientError, get_backend
from campaigns.models import Campaign, CampaignStatus, MessageState, SkipReason
from campaigns.services import render as rendering
from campaigns.services.rules import ADDRESS_FIELD, cap, quiet_until
from crm.pg.prepared import Prepared, Statement, prepare

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


# One statement per claimable state, each reading only that state's rows through
# `message_pending` (campaign, id) or `message_open_work` (campaign, state, id). Ordered by id
# alone, the planner may walk the primary key and filter instead, stepping over every row the
# campaign already sent (and, until vacuum, their dead versions) on every claim: quadratic over
# a large campaign, and chosen precisely when the statistics still say "all pending". Written
# as a range, the campaign stays in the sort key ("ORDER BY campaign_id, id"), an order the
# primary key cannot give and those indexes can; an equality would let the planner drop it.
# The rows are then updated by primary key (= ANY(ARRAY(...))), never by a join that may scan.
CLAIMABLE = {
    "deferred": "AND deferred_until <= clock_timestamp()",
    "claimed": "AND claimed_at < clock_timestamp() - make_interval(secs => %(lease)s)",
    "pending": "",
}
OPEN_ROWS_SQL = """
    SELECT id FROM campaigns_message
    WHERE campaign_id BETWEEN %(campaign)s AND %(campaign)s AND state = %(state)s {condition}
    ORDER BY campaign_id, id
    LIMIT %(limit)s
"""
CLAIM_SQL = f"""
    UPDATE campaigns_message
    SET state = 'claimed', claimed_at = clock_timestamp(), claimed_by = %(worker)s
    WHERE id = ANY(ARRAY({OPEN_ROWS_SQL} FOR UPDATE SKIP LOCKED))
    RETURNING id
"""  # noqa: S608 - fixed SQL only
# A row still `sending` after its lease belonged to a worker that died mid-send.
EXPIRE_SENDING_SQL = """
    UPDATE campaigns_message SET state = 'unknown', claimed_by = ''
    WHERE campaign_id = %(campaign)s AND state = 'sending'
      AND claimed_at < clock_timestamp() - make_interval(secs => %(lease)s)
"""


def claim(*, campaign_id: int, worker: str, limit: int) -> list[int]:
    """Take up to `limit` sendable messages of a campaign for `worker`.

    Due retries first (deferred rows whose time has come, claims whose lease expired: their
    worker died), then pending rows; oldest first within each.
    """
    params = {
        "campaign": campaign_id,
        "worker": worker,
        "lease": settings.CLIENTELE_CAMPAIGN_LEASE_SECONDS,
    }
    ids: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute(EXPIRE_SENDING_SQL, params)
        for state, condition in CLAIMABLE.items():
            if len(ids) >= limit:
                break
            cursor.execute(
                CLAIM_SQL.format(condition=condition),
                {**params, "state": state, "limit": limit - len(ids)},
            )
            ids += sorted(row[0] for row in cursor.fetchall())
    return ids


RECIPIENTS_SQL = """
    SELECT m.id, m.customer_id, m.channel, c.email, c.phone, c.first_name, c.patronymic,
           c.surname, coalesce(s.name, ''), coalesce(s.city, ''), coalesce(s.timezone, %s),
           coalesce(fc.categories -> 0 ->> 'name', ''), coalesce(oc.name, ''),
           c.birth_date, coalesce(la.available, 0)
    FROM campaigns_message m
    JOIN customers_customer c ON c.id = m.customer_id
    LEFT JOIN sales_store s ON s.id = c.home_store_id
    LEFT JOIN analytics_favouritecategories fc ON fc.customer_id = c.id
    LEFT JOIN sales_category oc ON oc.id = m.offer_category_id
    LEFT JOIN loyalty_account la ON la.customer_id = c.id
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
                points_balance=f"{row[14]:.2f}",
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


RECORD_SENT = Prepared(
    "record_sent",
    "text, bigint, text",
    """
    UPDATE campaigns_message SET state = 'sent', provider_id = $1, last_error = ''
    WHERE id = $2 AND state = 'sending' AND claimed_by = $3
    """,
)
RECORD_FAILED = Prepared(
    "record_failed",
    "boolean, integer, text, bigint, text",
    """
    UPDATE campaigns_message
    SET state = CASE WHEN $1 AND attempts < $2 THEN 'deferred' ELSE 'failed' END,
        deferred_until = clock_timestamp()
            + make_interval(secs => least(3600, 30 * power(2, attempts))),
        sent_at = NULL, last_error = $3
    WHERE id = $4 AND state IN ('sending', 'claimed') AND claimed_by = $5
    """,
)
CAP_LOCK = Prepared(
    "cap_lock",
    "bigint",
    f"SELECT pg_advisory_xact_lock({ADVISORY_CLASS}, ($1 % 2147483647)::int)",
)
DEFER = Prepared(
    "defer",
    "timestamptz, bigint, text",
    """
    UPDATE campaigns_message SET state = 'deferred', deferred_until = $1
    WHERE id = $2 AND state = 'claimed' AND claimed_by = $3
    """,
)


def gate_statement(channel: str, days: int) -> Prepared:
    """The UPDATE that commits `sending` only if every send-time rule holds (`gate_id` back)."""
    address = ADDRESS_FIELD[channel]  # a KeyError for anything but the fixed channels
    return Prepared(
        f"gate_{channel}",
        "bigint, text, integer",
        f"""
        UPDATE campaigns_message m
        SET state = 'sending', claimed_at = clock_timestamp(), sent_at = clock_timestamp(),
            attempts = m.attempts + 1
        FROM customers_customer c
        WHERE m.id = $1 AND m.state = 'claimed' AND m.claimed_by = $2
          AND c.id = m.customer_id
          AND c.consent_{channel} AND NOT c.do_not_contact AND c.erased_at IS NULL
          AND c.{address} <> ''
          AND (NOT m.is_marketing
               OR (SELECT count(*) FROM campaigns_message x
                   WHERE x.customer_id = m.customer_id AND x.is_marketing
                     AND x.sent_at IS NOT NULL
                     AND x.sent_at > clock_timestamp() - make_interval(days => {int(days)})
                     AND x.state IN ('sending', 'sent', 'unknown')) < $3)
        RETURNING m.id AS gate_id
        """,  # noqa: S608 - channel and column come from fixed choices, days is an int
    )


def _record(outcome: Outcome, worker: str) -> Statement:
    """The UPDATE that records how handing a message to the provider went."""
    if outcome.ok:
        return RECORD_SENT(outcome.provider_id[:200], outcome.message_id, worker)
    return RECORD_FAILED(
        outcome.transient,
        settings.CLIENTELE_CAMPAIGN_MAX_ATTEMPTS,
        outcome.error[:2000],
        outcome.message_id,
        worker,
    )


def _gate(
    *, gate: Prepared, message_id: int, customer_id: int, marketing: bool, worker: str, limit: int
) -> list[Statement]:
    """Statements that commit `sending` only if every send-time rule holds.

    The advisory lock is taken by its own statement, before the gate's, so the gate's snapshot
    (one per statement in READ COMMITTED) sees the other campaigns' latest sends.
    """
    statements = [CAP_LOCK(customer_id)] if marketing else []
    statements.append(gate(message_id, worker, limit))
    return statements


def _run(statements: list[Statement]) -> bool:
    """Execute statements in one round trip and one transaction; True if a gate let through.

    A multi-statement query is one implicit transaction in PostgreSQL, so the previous
    message's outcome, the lock and this message's `sending` commit together with a single
    WAL flush: one durable commit per message.
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
    return DEFER(until, message_id, worker)


def _release(*, message_ids: list[int], worker: str) -> Statement:
    """Hand claimed rows this worker will not send back, claimable at once by any worker."""
    return (
        """
        UPDATE campaigns_message SET state = 'pending', claimed_by = '', claimed_at = NULL
        WHERE id = ANY(%s) AND state = 'claimed' AND claimed_by = %s
        """,
        [message_ids, worker],
    )


def never() -> bool:
    return False


def send_batch(
    *,
    campaign: Campaign,
    message_ids: list[int],
    worker: str,
    backend,
    stop: Callable[[], bool] = never,
) -> int:
    """Gate, send and record each claimed message; returns how many were sent.

    `stop` is asked before each message: once it says yes, the previous message's outcome is
    recorded, the rest of the batch is released and the batch ends.
    """
    sent = 0
    previous: Outcome | None = None
    renderer = rendering.Renderer(campaign)
    domain = settings.CLIENTELE_MESSAGE_ID_DOMAIN
    limit, days = cap()
    gate = gate_statement(campaign.channel, days)
    prepare([RECORD_SENT, RECORD_FAILED, CAP_LOCK, DEFER, gate])
    recipients = load_recipients(message_ids)
    for index, recipient in enumerate(recipients):
        statements: list[Statement] = []
        if previous is not None:
            statements.append(_record(previous, worker))
            previous = None
        if stop():
            rest = [r.message_id for r in recipients[index:]]
            _run([*statements, _release(message_ids=rest, worker=worker)])
            return sent
        until = quiet_until(timezone.now(), recipient.store_timezone)
        if until is not None:
            statements.append(_defer(message_id=recipient.message_id, until=until, worker=worker))
            _run(statements)
            continue
        try:
            outgoing = renderer.render(
                recipient,
                idempotency_key=f"<clientele.{campaign.pk}.{recipient.message_id}@{domain}>",
            )
        except Exception as error:  # noqa: BLE001 - any template failure fails this message
            failure = Outcome(recipient.message_id, ok=False, error=f"template: {error!r}")
            _run([*statements, _record(failure, worker)])
            continue
        statements += _gate(
            gate=gate,
            message_id=recipient.message_id,
            customer_id=recipient.customer_id,
            marketing=campaign.is_marketing,
            worker=worker,
            limit=limit,
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


def send_some(
    *,
    campaign_id: int,
    worker: str,
    max_seconds: float = 30.0,
    stop: Callable[[], bool] = never,
) -> bool:
    """Send a campaign's claimable messages for up to `max_seconds`; True if work is left now.

    `stop` (asked between messages) ends the run early, with every message it handed to the
    provider recorded and its unsent claims released; see `send_batch`.
    """
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status not in (CampaignStatus.SENDING, CampaignStatus.ACTIVE):
        return False
    deadline = time.monotonic() + max_seconds
    backend = get_backend(campaign.channel)
    backend.open()
    try:
        while time.monotonic() < deadline and not stop():
            ids = claim(
                campaign_id=campaign.pk, worker=worker, limit=settings.CLIENTELE_CAMPAIGN_BATCH
            )
            if not ids:
                campaign_finish_if_done(campaign_id=campaign.pk)
                return False
            send_batch(
                campaign=campaign, message_ids=ids, worker=worker, backend=backend, stop=stop
            )
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
    """Whether a send task would find work for this campaign right now (a due retry, a
    pending row, or an expired `sending` one for a claim to settle); reads open rows only."""
    params = {"campaign": campaign_id, "lease": settings.CLIENTELE_CAMPAIGN_LEASE_SECONDS}
    with connection.cursor() as cursor:
        # Pending first: the usual answer, found at the first row.
        states = {"pending": "", **CLAIMABLE, "sending": CLAIMABLE["claimed"]}
        for state, condition in states.items():
            cursor.execute(
                OPEN_ROWS_SQL.format(condition=condition), {**params, "state": state, "limit": 1}
            )
            if cursor.fetchone() is not None:
                return True
    return False
