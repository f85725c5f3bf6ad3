"""Acceptance scenarios of delivery against a real SMTP server and a real HTTP gateway."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from analytics.services import metrics_recompute_all
from campaigns.channels import get_backend
from campaigns.models import CampaignKind, CampaignStatus, Message, MessageState, SkipReason
from campaigns.services import delivery
from campaigns.services.campaigns import campaign_start, unsubscribe
from campaigns.services.render import unsubscribe_token
from campaigns.services.sending import daily_triggers_run, sweep_run
from customers.models import ConsentEvent, Customer
from tests.campaigns.conftest import customer, make_campaign

MSK = ZoneInfo("Europe/Moscow")


def send_all(campaign):
    """What the Celery task does, in the test process: send until nothing is claimable."""
    while delivery.send_some(campaign_id=campaign.pk, worker="test-worker", max_seconds=60):
        pass


def states(campaign):
    return dict(
        Message.objects.filter(campaign=campaign)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )


def test_one_off_email_carries_unsubscribe_headers_link_and_personalisation(
    smtp, marketer, store_a
):
    anna = customer(store_a, first_name="Анна", patronymic="Сергеевна", email="anna@mail.ru")
    campaign = make_campaign(marketer)
    assert campaign_start(actor=marketer, campaign=campaign) == 1
    send_all(campaign)
    [mail] = smtp.to("anna@mail.ru")
    message = Message.objects.get(campaign=campaign, customer=anna)
    assert message.state == MessageState.SENT
    token = unsubscribe_token(message.pk)
    assert mail["Subject"] == "Hello Анна"
    assert mail["Message-ID"] == message.message_id_header
    assert mail["List-Unsubscribe"].strip() == f"<https://crm.example.ru/u/{token}/>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert "Dear Анна Сергеевна, see you at Тверская!" in html
    assert f"https://crm.example.ru/u/{token}/" in html
    assert f"https://crm.example.ru/u/{token}/" in text
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE


def test_html_personalisation_is_escaped(smtp, marketer, store_a):
    customer(store_a, first_name="<script>alert(1)</script>", email="x@mail.ru")
    campaign = make_campaign(marketer)
    campaign_start(actor=marketer, campaign=campaign)
    send_all(campaign)
    html = smtp.to("x@mail.ru")[0].get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_birthday_campaign_reaches_consenting_customers_n_days_ahead_once(smtp, marketer, store_a):
    today = dt.date(2026, 3, 10)
    due = customer(store_a, birth_date=dt.date(1990, 3, 13), email="due@mail.ru")
    customer(
        store_a, birth_date=dt.date(1990, 3, 13), email="noconsent@mail.ru", consent_email=False
    )
    customer(store_a, birth_date=dt.date(1990, 3, 13), email="dnc@mail.ru", do_not_contact=True)
    customer(store_a, birth_date=dt.date(1990, 3, 14), email="later@mail.ru")
    customer(store_a, birth_date=dt.date(1990, 3, 12), email="earlier@mail.ru")
    campaign = make_campaign(
        marketer,
        kind=CampaignKind.BIRTHDAY,
        days_before=3,
        name="ДР",
        subject="С днём рождения, {{ first_name }}! ({{ birthday }})",
    )
    campaign_start(actor=marketer, campaign=campaign, now=dt.datetime(2026, 3, 10, 8, tzinfo=MSK))
    for _run in range(2):
        daily_triggers_run(today=today)
        send_all(campaign)
    assert smtp.recipients() == ["due@mail.ru"]
    assert "13.03" in smtp.messages[0]["Subject"]
    message = Message.objects.get(campaign=campaign)
    assert (message.customer_id, message.occasion, message.state) == (due.pk, "2026", "sent")
    # Next year is a new occasion for the same customer.
    daily_triggers_run(today=dt.date(2027, 3, 10))
    send_all(campaign)
    assert smtp.recipients() == ["due@mail.ru", "due@mail.ru"]
    assert sorted(Message.objects.values_list("occasion", flat=True)) == ["2026", "2027"]


def test_holiday_campaign_with_affinity_picks_who_bought_before_it_in_two_years(
    smtp, marketer, store_a, shop
):
    loyal = customer(store_a, email="loyal@mail.ru")
    once = customer(store_a, email="once@mail.ru")
    never = customer(store_a, email="never@mail.ru")
    for year in (2024, 2025):
        shop.buy(loyal, dt.datetime(year, 3, 5, 12, tzinfo=MSK), 3000)
    shop.buy(once, dt.datetime(2025, 3, 6, 12, tzinfo=MSK), 2000)
    shop.buy(never, dt.datetime(2025, 6, 1, 12, tzinfo=MSK), 2000)
    metrics_recompute_all(as_of=dt.datetime(2026, 2, 1, 12, tzinfo=MSK))
    campaign = make_campaign(
        marketer,
        kind=CampaignKind.HOLIDAY,
        holiday_key="03-08",
        days_before=5,
        affinity_only=True,
        subject="К 8 Марта: {{ offer_category }}",
    )
    campaign_start(actor=marketer, campaign=campaign, now=dt.datetime(2026, 2, 20, 9, tzinfo=MSK))
    assert not Message.objects.exists()  # not yet: the holiday is more than 5 days away
    daily_triggers_run(today=dt.date(2026, 3, 3))
    send_all(campaign)
    assert smtp.recipients() == ["loyal@mail.ru"]
    assert smtp.messages[0]["Subject"] == "К 8 Марта: Цветы"


def test_frequency_cap_holds_across_two_overlapping_campaigns(smtp, settings, marketer, store_a):
    settings.CLIENTELE_CAP_MESSAGES = 1
    a = customer(store_a, email="a@mail.ru")
    b = customer(store_a, email="b@mail.ru")
    first = make_campaign(marketer, name="first")
    second = make_campaign(marketer, name="second")
    service = make_campaign(marketer, name="order ready", is_marketing=False)
    for campaign in (first, second, service):
        campaign_start(actor=marketer, campaign=campaign)
    # Interleave the two marketing sends batch by batch, as two workers would.
    for campaign in (first, second):
        ids = delivery.claim(campaign_id=campaign.pk, worker="w", limit=1)
        delivery.send_batch(
            campaign=campaign,
            message_ids=ids,
            worker="w",
            backend=get_backend("email"),
        )
    for campaign in (first, second, service):
        send_all(campaign)
    assert smtp.recipients() == ["a@mail.ru", "a@mail.ru", "b@mail.ru", "b@mail.ru"]
    capped = Message.objects.filter(state=MessageState.SKIPPED)
    assert capped.count() == 2
    assert set(capped.values_list("skip_reason", flat=True)) == {SkipReason.FREQUENCY_CAP}
    assert set(capped.values_list("campaign", flat=True)) == {second.pk}
    assert {a.pk, b.pk} == set(capped.values_list("customer", flat=True))
    assert states(service) == {"sent": 2}


def test_quiet_hours_defer_in_the_store_time_zone_then_send(
    smtp, settings, marketer, store_a, store_b
):
    store_b.timezone = "Asia/Vladivostok"
    store_b.save()
    hour = timezone.now().astimezone(ZoneInfo("Asia/Vladivostok")).hour
    settings.CLIENTELE_QUIET_HOURS = f"{hour}-{(hour + 1) % 24}"
    customer(store_a, email="moscow@mail.ru")
    far = customer(store_b, email="vlad@mail.ru")
    first = make_campaign(marketer, name="first")
    second = make_campaign(marketer, name="second")
    campaign_start(actor=marketer, campaign=first)
    campaign_start(actor=marketer, campaign=second)
    send_all(first)
    send_all(second)
    moscow_quiet = timezone.now().astimezone(MSK).hour == hour
    if not moscow_quiet:
        assert smtp.recipients() == ["moscow@mail.ru", "moscow@mail.ru"]
    deferred = Message.objects.filter(customer=far)
    assert set(deferred.values_list("state", flat=True)) == {"deferred"}
    until = deferred.first().deferred_until.astimezone(ZoneInfo("Asia/Vladivostok"))
    assert (until.hour, until.minute) == ((hour + 1) % 24, 0)
    assert first.__class__.objects.get(pk=first.pk).status == CampaignStatus.SENDING
    # The quiet hours end: the sweeper finds the due rows and they go out.
    settings.CLIENTELE_QUIET_HOURS = ""
    Message.objects.filter(customer=far).update(deferred_until=timezone.now())
    assert set(sweep_run()) == {first.pk, second.pk}
    send_all(first)
    send_all(second)
    assert len(smtp.to("vlad@mail.ru")) == 2


def test_unsubscribe_link_stops_the_next_campaign_and_shows_in_consent_history(
    client, smtp, marketer, store_a
):
    anna = customer(store_a, email="anna@mail.ru")
    first = make_campaign(marketer)
    campaign_start(actor=marketer, campaign=first)
    send_all(first)
    url = smtp.to("anna@mail.ru")[0]["List-Unsubscribe"].strip().strip("<>")
    path = url.removeprefix("https://crm.example.ru")
    # A mail scanner's GET asks, and changes nothing.
    page = client.get(path)
    assert page.status_code == 200
    assert b"unsubscribe-confirm" in page.content
    anna.refresh_from_db()
    assert anna.consent_email
    # RFC 8058 one-click POST, without session or CSRF token.
    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    anna.refresh_from_db()
    assert not anna.consent_email
    event = ConsentEvent.objects.get(customer=anna)
    assert (event.channel, event.granted, event.source) == ("email", False, "unsubscribe")
    assert Message.objects.get(campaign=first).unsubscribed_at is not None
    second = make_campaign(marketer, name="second")
    campaign_start(actor=marketer, campaign=second)
    send_all(second)
    assert len(smtp.to("anna@mail.ru")) == 1


def test_consent_withdrawn_after_materialising_is_checked_at_send_time(smtp, marketer, store_a):
    customer(store_a, email="anna@mail.ru")
    campaign = make_campaign(marketer)
    campaign_start(actor=marketer, campaign=campaign)
    message = Message.objects.get()
    unsubscribe(token=unsubscribe_token(message.pk))
    send_all(campaign)
    assert smtp.messages == []
    message.refresh_from_db()
    assert (message.state, message.skip_reason) == ("skipped", "no_consent")


def test_forged_unsubscribe_token_is_404(client, db):
    assert client.get("/u/123:forged/").status_code == 404
    assert client.post("/u/123:forged/").status_code == 404


def test_holdout_customers_receive_nothing(smtp, marketer, store_a):
    people = [customer(store_a, email=f"p{i}@mail.ru") for i in range(60)]
    campaign = make_campaign(marketer, holdout_share=Decimal("0.3"))
    campaign_start(actor=marketer, campaign=campaign)
    send_all(campaign)
    held = set(
        Message.objects.filter(state=MessageState.HOLDOUT).values_list("customer__email", flat=True)
    )
    assert 5 <= len(held) <= 35
    assert held.isdisjoint(smtp.recipients())
    assert len(smtp.recipients()) == len(people) - len(held)
    # Deterministic: the same campaign draws the same holdout again.
    Message.objects.all().delete()
    campaign.status = CampaignStatus.DRAFT
    campaign.save()
    campaign_start(actor=marketer, campaign=campaign)
    assert held == set(
        Message.objects.filter(state=MessageState.HOLDOUT).values_list("customer__email", flat=True)
    )


def test_sms_through_http_gateway_has_opt_out_and_token(gateway, marketer, store_a):
    customer(store_a, first_name="Анна", phone_number="+79160000001")
    campaign = make_campaign(marketer, channel="sms")
    campaign_start(actor=marketer, campaign=campaign)
    send_all(campaign)
    [request] = gateway.requests
    message = Message.objects.get()
    assert request["auth"] == "Bearer sms-secret"
    assert request["json"]["to"] == "+79160000001"
    assert request["json"]["text"].startswith("Hi Анна, spring sale at Тверская")
    assert (
        f"Unsubscribe: https://crm.example.ru/u/{unsubscribe_token(message.pk)}/"
        in (request["json"]["text"])
    )
    assert request["key"] == message.message_id_header
    assert (message.state, message.provider_id) == ("sent", "gw-1")


def test_transient_gateway_error_retries_with_backoff_permanent_is_recorded(
    gateway, marketer, store_a
):
    customer(store_a, phone_number="+79160000001")
    campaign = make_campaign(marketer, channel="messenger", name="im")
    Customer.objects.update(consent_messenger=True)
    campaign_start(actor=marketer, campaign=campaign)
    gateway.status = 503
    send_all(campaign)
    message = Message.objects.get()
    assert (message.state, message.attempts) == ("deferred", 1)
    assert "HTTP 503" in message.last_error
    assert message.deferred_until > timezone.now() + dt.timedelta(seconds=20)
    assert message.sent_at is None
    Message.objects.update(deferred_until=timezone.now())
    gateway.status = 400
    send_all(campaign)
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("failed", 2)
    assert "HTTP 400" in message.last_error
    assert len(gateway.requests) == 2


def test_permanent_smtp_refusal_is_recorded_others_still_sent(smtp, marketer, store_a):
    customer(store_a, email="bad@mail.ru")
    customer(store_a, email="good@mail.ru")
    smtp.fail_for["bad@mail.ru"] = "550 No such user"
    campaign = make_campaign(marketer)
    campaign_start(actor=marketer, campaign=campaign)
    send_all(campaign)
    assert smtp.recipients() == ["good@mail.ru"]
    bad = Message.objects.get(customer__email="bad@mail.ru")
    assert bad.state == "failed"
    assert "550" in bad.last_error


def test_materialising_twice_creates_nothing_twice(marketer, store_a):
    customer(store_a)
    campaign = make_campaign(marketer)
    campaign.status = CampaignStatus.SENDING
    campaign.save()
    qs = Customer.objects.all()
    assert delivery.materialise(campaign=campaign, occasion="once", customers=qs) == 1
    assert delivery.materialise(campaign=campaign, occasion="once", customers=qs) == 0


def test_expired_claim_is_reclaimed_and_dead_sending_becomes_unknown(
    smtp, settings, marketer, store_a
):
    for i in range(3):
        customer(store_a, email=f"c{i}@mail.ru")
    campaign = make_campaign(marketer)
    campaign_start(actor=marketer, campaign=campaign)
    ids = delivery.claim(campaign_id=campaign.pk, worker="dead", limit=3)
    # The dead worker had committed `sending` for the first one and then vanished.
    Message.objects.filter(pk=ids[0]).update(state="sending", sent_at=timezone.now())
    past = timezone.now() - dt.timedelta(seconds=settings.CLIENTELE_CAMPAIGN_LEASE_SECONDS + 1)
    Message.objects.filter(pk__in=ids).update(claimed_at=past)
    send_all(campaign)
    assert states(campaign) == {"unknown": 1, "sent": 2}
    assert len(smtp.messages) == 2
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DONE


def messages_read() -> int:
    """Rows of campaigns_message this transaction has read so far, by any scan."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
            "WHERE relname = 'campaigns_message'"
        )
        return cursor.fetchone()[0]


def test_a_claim_late_in_a_campaign_reads_only_open_rows(marketer, store_a):
    total, sent, batch = 3000, 2700, 100
    Customer.objects.bulk_create(
        Customer(surname=f"К{i}", email=f"q{i}@mail.ru", consent_email=True, home_store=store_a)
        for i in range(total)
    )
    campaign = make_campaign(marketer)
    assert campaign_start(actor=marketer, campaign=campaign) == total
    with connection.cursor() as cursor:
        # The statistics say "all pending", as they do until (auto)analyze catches up.
        cursor.execute("ANALYZE campaigns_message")
    first = Message.objects.filter(campaign=campaign).order_by("pk")[sent].pk
    Message.objects.filter(campaign=campaign, pk__lt=first).update(state="sent")
    delivery.claim(campaign_id=campaign.pk, worker="other", limit=batch)  # held by another
    before = messages_read()
    ids = delivery.claim(campaign_id=campaign.pk, worker="w", limit=batch)
    read = messages_read() - before
    assert ids == list(range(first + batch, first + 2 * batch))
    # The batch, and what the lookups of due retries touch; not the 2,700 sent rows.
    assert read <= 3 * batch, read

    # The sweep's question, asked of every active campaign each minute, reads as little.
    def sweep_reads() -> tuple[bool, int]:
        before = messages_read()
        answer = delivery.has_claimable(campaign_id=campaign.pk)
        return answer, messages_read() - before

    answer, read = sweep_reads()
    assert answer and read == 1, read
    Message.objects.filter(campaign=campaign, state="pending").update(state="sent")
    answer, read = sweep_reads()
    # The rows in flight (the two claims, their leases not expired), not the sent ones.
    assert not answer and read <= 2 * batch, read


def test_scheduled_campaign_starts_when_due(marketer, store_a):
    customer(store_a)
    later = timezone.now() + dt.timedelta(hours=1)
    campaign = make_campaign(marketer, scheduled_at=later)
    assert campaign_start(actor=marketer, campaign=campaign) == 0
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    sweep_run(now=later + dt.timedelta(seconds=1))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING
    assert Message.objects.filter(campaign=campaign).count() == 1


def test_beat_schedule_rows_exist(db):
    from django_celery_beat.models import PeriodicTask

    tasks = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {"campaigns.tasks.run_daily_triggers", "campaigns.tasks.sweep"} <= tasks


def test_chain_date_of_one_store_greets_only_that_stores_customers(
    smtp, marketer, store_a, store_b
):
    from crm.models import ChainDate

    customer(store_a, email="a@mail.ru")
    customer(store_b, email="b@mail.ru")
    anniversary = ChainDate.objects.create(
        name="День рождения Тверской", month=9, day=15, store=store_a
    )
    campaign = make_campaign(
        marketer, kind=CampaignKind.HOLIDAY, chain_date=anniversary, days_before=2
    )
    campaign_start(actor=marketer, campaign=campaign, now=dt.datetime(2026, 9, 1, 9, tzinfo=MSK))
    daily_triggers_run(today=dt.date(2026, 9, 12))
    send_all(campaign)
    assert smtp.recipients() == []
    daily_triggers_run(today=dt.date(2026, 9, 13))
    send_all(campaign)
    assert smtp.recipients() == ["a@mail.ru"]
    assert Message.objects.get().occasion == "2026"


def test_stop_records_the_message_in_flight_and_releases_the_rest_of_the_batch(
    smtp, marketer, store_a
):
    for i in range(5):
        customer(store_a, email=f"c{i}@mail.ru")
    campaign = make_campaign(marketer)
    campaign_start(actor=marketer, campaign=campaign)
    ids = delivery.claim(campaign_id=campaign.pk, worker="w", limit=5)
    asked = []

    def stop() -> bool:
        # Asked before each message: the worker's parent dies while the second is in flight.
        asked.append(1)
        return len(asked) > 2

    with get_backend("email") as backend:
        sent = delivery.send_batch(
            campaign=campaign, message_ids=ids, worker="w", backend=backend, stop=stop
        )
    assert sent == 2
    assert states(campaign) == {"sent": 2, "pending": 3}
    assert set(Message.objects.filter(state="pending").values_list("claimed_by", flat=True)) == {""}
    # Released rows are claimable at once, without waiting for a lease to expire.
    assert delivery.has_claimable(campaign_id=campaign.pk)
    send_all(campaign)
    assert states(campaign) == {"sent": 5}
    assert sorted(smtp.recipients()) == [f"c{i}@mail.ru" for i in range(5)]


def test_send_prepares_its_statements_again_in_a_session_that_lost_them(smtp, marketer, store_a):
    from django.db import connection

    from crm.pg.prepared import forget_session

    customer(store_a, email="a@mail.ru")
    first = make_campaign(marketer, name="first")
    second = make_campaign(marketer, name="second")
    campaign_start(actor=marketer, campaign=first)
    campaign_start(actor=marketer, campaign=second)
    send_all(first)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    send_all(second)
    assert smtp.recipients() == ["a@mail.ru", "a@mail.ru"]
    forget_session()  # for the tests after this one on this connection (the till's statement)
