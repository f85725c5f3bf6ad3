"""Issue 15, defects 5-9: the segment builder and campaign pages in plain words, segment
members, the customer picker, send confirmation, honest progress, configured channels only,
and results that say when the holdout is too small."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Message, Segment
from campaigns.services.segments import validate_rules
from tests.campaigns.conftest import customer, make_campaign

pytestmark = pytest.mark.django_db

RU = {"HTTP_ACCEPT_LANGUAGE": "ru"}


def _schema(body: str) -> dict:
    start = body.index(">", body.index('id="segment-schema"')) + 1
    return json.loads(body[start : body.index("</script>", start)])


def test_builder_schema_labels_every_operator_and_value_in_russian(client, marketer):
    client.force_login(marketer)
    schema = _schema(client.get(reverse("campaigns:segment_create"), **RU).content.decode())
    assert schema["gender"]["op_labels"] == {"in": "один из", "not_in": "ни один из"}
    assert dict(schema["rfm_segment"]["choices"])["about_to_sleep"] == "Засыпающие"
    assert dict(schema["lifecycle_stage"]["choices"])["lead"] != "lead"
    assert dict(schema["consent"]["options"])["sms"] == "SMS"
    assert dict(schema["consent"]["options"])["email"] == "Эл. почта"
    holidays = dict(schema["holiday_affinity"]["options"])
    assert holidays["03-08"] == "08.03 Международный женский день"
    for spec in schema.values():
        for op, label in spec["op_labels"].items():
            assert label != op


def test_rule_errors_name_the_condition_and_field(marketer):
    tree = {"op": "and", "rules": [{"field": "gender", "op": "in", "value": ["x"]}]}
    assert validate_rules(tree) == ["Condition 1 (Gender): choose or enter a valid value."]


def test_segment_members_are_scoped_and_masked(client, marketer, store_a):
    anna = customer(store_a, surname="Иванова", first_name="Анна", email="anna@mail.ru")
    segment = Segment.objects.create(name="Все", rules={"op": "and", "rules": []}, owner=marketer)
    client.force_login(marketer)
    body = client.get(reverse("campaigns:segment_members", args=[segment.pk])).content.decode()
    assert "Иванова Анна" in body
    assert "a***@mail.ru" in body and "anna@mail.ru" not in body
    assert anna.phone not in body


@pytest.mark.parametrize("persona", ["outsider", "manager_a", "associate_a"])
def test_segment_members_and_picker_are_404_for_others(client, request, marketer, persona):
    segment = Segment.objects.create(name="x", rules={}, owner=marketer)
    campaign = make_campaign(marketer)
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("campaigns:segment_members", args=[segment.pk])).status_code == 404
    url = reverse("campaigns:pick_customer", args=[campaign.pk])
    assert client.get(url, {"q": "Ива"}).status_code == 404


def test_picker_finds_customers_by_name_without_contact_details(client, marketer, store_a):
    anna = customer(store_a, surname="Иванова", first_name="Анна")
    campaign = make_campaign(marketer)
    client.force_login(marketer)
    url = reverse("campaigns:pick_customer", args=[campaign.pk])
    body = client.get(url, {"q": "Иванова"}).content.decode()
    assert f'data-customer="{anna.pk}"' in body
    assert anna.phone not in body


def test_campaign_form_speaks_russian_and_takes_holdout_in_percent(client, marketer):
    client.force_login(marketer)
    body = client.get(reverse("campaigns:create"), **RU).content.decode()
    assert "Сегмент" in body and "Дата сети" in body
    assert "Segment<" not in body and "Chain date" not in body
    assert "Международный женский день" in body and "Day off" not in body
    response = client.post(
        reverse("campaigns:create"),
        {
            "name": "Весна",
            "kind": "one_off",
            "channel": "email",
            "subject": "Привет",
            "body_html": "<p>Привет</p>",
            "holdout_percent": "15",
            "attribution_days": "14",
            "days_before": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Campaign.objects.get().holdout_share == Decimal("0.150")
    edit = client.get(reverse("campaigns:edit", args=[Campaign.objects.get().pk])).content
    assert b'name="holdout_percent" value="15"' in edit


def test_only_configured_channels_are_offered_and_admins_are_told_how(
    client, settings, marketer, admin_user
):
    settings.CLIENTELE_SMS_GATEWAY_URL = ""
    settings.CLIENTELE_MESSENGER_GATEWAY_URL = ""
    client.force_login(marketer)
    body = client.get(reverse("campaigns:create")).content.decode()
    assert '<option value="sms"' not in body and '<option value="email"' in body
    assert "CLIENTELE_SMS_GATEWAY_URL" not in body
    client.force_login(admin_user)
    body = client.get(reverse("campaigns:create")).content.decode()
    assert "CLIENTELE_SMS_GATEWAY_URL" in body
    settings.CLIENTELE_SMS_GATEWAY_URL = "http://127.0.0.1:9/"
    assert '<option value="sms"' in client.get(reverse("campaigns:create")).content.decode()


def test_send_asks_for_confirmation_with_the_audience_size(client, marketer, store_a, smtp):
    for i in range(3):
        customer(store_a, consent_email=i < 2)
    campaign = make_campaign(marketer)
    client.force_login(marketer)
    url = reverse("campaigns:start", args=[campaign.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="audience-total">3<' in page
    assert 'data-testid="audience-reachable">2<' in page
    assert 'data-testid="audience-to-send">2<' in page
    client.post(url)  # no confirmation: nothing starts
    assert Campaign.objects.get().status == "draft"
    client.post(url, {"confirmed": "yes"})
    assert Campaign.objects.get().status != "draft"


def test_draft_without_messages_shows_no_full_bar(client, marketer):
    campaign = make_campaign(marketer)
    client.force_login(marketer)
    body = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "100%" not in body
    assert 'data-testid="progress-empty"' in body


def test_progress_names_states_and_explains_quiet_hours(client, marketer, store_a):
    campaign = make_campaign(marketer, status="sending")
    until = timezone.now() + dt.timedelta(hours=5)
    for i in range(3):
        Message.objects.create(
            campaign=campaign,
            customer=customer(store_a),
            channel="email",
            state="deferred" if i else "sent",
            deferred_until=until if i else None,
            created_at=timezone.now(),
        )
    client.force_login(marketer)
    body = client.get(reverse("campaigns:progress", args=[campaign.pk]), **RU).content.decode()
    assert "deferred:" not in body and "sent:" not in body
    assert "Отложено" in body and "Отправлено" in body
    assert 'data-testid="deferred-explained"' in body and "тихих часов" in body


def test_sms_test_send_without_gateway_says_what_to_do(client, settings, marketer, store_a):
    settings.CLIENTELE_SMS_GATEWAY_URL = ""
    campaign = make_campaign(marketer, channel="sms")
    anna = customer(store_a)
    client.force_login(marketer)
    response = client.post(
        reverse("campaigns:test_send", args=[campaign.pk]),
        {"customer": anna.pk, "to": "+79161234567"},
        **RU,
    )
    body = response.content.decode()
    assert "CLIENTELE_SMS_GATEWAY_URL is not set" not in body
    assert "администратор" in body


def test_results_warn_when_holdout_is_too_small_and_format_money(client, marketer, store_a):
    campaign = make_campaign(marketer, holdout_share=Decimal("0.1"), status="done")
    for _i in range(24):
        Message.objects.create(
            campaign=campaign,
            customer=customer(store_a),
            channel="email",
            state="sent",
            created_at=timezone.now(),
        )
    client.force_login(marketer)
    body = client.get(reverse("campaigns:results", args=[campaign.pk]), **RU).content.decode()
    assert 'data-testid="holdout-warning"' in body
    assert "0,000" not in body
    assert "0,00\u00a0₽" in body
