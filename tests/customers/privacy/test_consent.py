"""Consent to processing: recorded at sign-up (page and API), re-consent, withdrawal."""

from __future__ import annotations

import datetime as dt

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from campaigns.models import Message
from campaigns.services import delivery
from campaigns.services.campaigns import campaign_start
from campaigns.services.segments import compile_rules
from crm.models import AuditEvent
from customers.models import ConsentEvent, Customer, ProcessingConsent, ProcessingConsentDocument
from customers.privacy.selectors import ProcessingState, processing_state
from customers.privacy.services import processing_consent_record, withdrawal_token
from tests.campaigns.conftest import customer as campaign_customer
from tests.campaigns.conftest import make_campaign
from tests.factories import CustomerFactory

NEW_CARD = {
    "surname": "Лебедева",
    "first_name": "Ольга",
    "phones": "8 (916) 555-12-34",
    "gender": "f",
    "lifecycle_stage": "lead",
}


def test_signup_page_records_paper_consent_with_its_document_version(
    client, manager_a, store_a, document
):
    client.force_login(manager_a)
    page = client.get("/customers/new/")
    assert 'data-testid="processing-consent-fieldset"' in page.content.decode()
    response = client.post(
        "/customers/new/",
        {
            **NEW_CARD,
            "home_store": store_a.pk,
            "pc-method": "paper",
            "pc-paper_number": "П-000123",
            "pc-scan": SimpleUploadedFile("scan.pdf", b"%PDF-1.4 signed", "application/pdf"),
        },
    )
    assert response.status_code == 302
    customer = Customer.objects.get(surname="Лебедева")
    consent = ProcessingConsent.objects.get(customer=customer)
    assert (consent.granted, consent.method, consent.paper_number) == (True, "paper", "П-000123")
    assert consent.document == document
    assert consent.taken_by == manager_a
    assert consent.scan.read() == b"%PDF-1.4 signed"
    assert customer.processing_document == document
    assert processing_state(customer) == ProcessingState.VALID
    assert AuditEvent.objects.filter(
        action="processing_consent", object_id=str(customer.pk)
    ).exists()
    card = client.get(customer.get_absolute_url()).content.decode()
    assert 'data-state="valid"' in card


def test_signup_page_paper_consent_without_number_or_scan_is_a_form_error(
    client, manager_a, store_a, document
):
    client.force_login(manager_a)
    response = client.post(
        "/customers/new/", {**NEW_CARD, "home_store": store_a.pk, "pc-method": "paper"}
    )
    assert response.status_code == 400
    assert 'data-error-for="paper_number"' in response.content.decode()
    assert not Customer.objects.filter(surname="Лебедева").exists()


def test_signup_page_without_consent_leaves_the_card_without_it(client, manager_a, store_a):
    client.force_login(manager_a)
    response = client.post("/customers/new/", {**NEW_CARD, "home_store": store_a.pk})
    assert response.status_code == 302
    customer = Customer.objects.get(surname="Лебедева")
    assert processing_state(customer) == ProcessingState.MISSING


def test_pos_api_creates_a_card_with_till_screen_consent(pos_a, store_a, document):
    response = pos_a.post(
        "/api/v1/customers/",
        {"surname": "Орлова", "phones": ["+79165550000"], "processing_consent": {}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["processing_consent"]["state"] == "valid"
    assert body["processing_consent"]["version"] == "2025-09"
    consent = ProcessingConsent.objects.get(customer_id=body["id"])
    assert (consent.method, consent.store, consent.taken_by) == ("till_screen", store_a, None)
    assert consent.note.startswith("POS pos:")


def test_api_paper_consent_with_a_named_version(client, admin_user, document):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post(
        "/api/v1/customers/",
        {
            "surname": "Орлова",
            "processing_consent": {"method": "paper", "version": "2025-09", "paper_number": "7"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    consent = ProcessingConsent.objects.get(customer_id=response.json()["id"])
    assert (consent.method, consent.paper_number, consent.taken_by) == ("paper", "7", admin_user)


def test_api_unknown_version_or_paper_without_number_is_400_and_no_card(pos_a, document):
    response = pos_a.post(
        "/api/v1/customers/",
        {"surname": "Орлова", "processing_consent": {"version": "1999"}},
        format="json",
    )
    assert response.status_code == 400
    assert "processing_consent" in str(response.json()["error"]["fields"])
    response = pos_a.post(
        "/api/v1/customers/",
        {"surname": "Орлова", "processing_consent": {"method": "paper"}},
        format="json",
    )
    assert response.status_code == 400
    assert "paper_number" in response.json()["error"]["fields"]
    assert not Customer.objects.filter(surname="Орлова").exists()


def test_a_new_version_that_requires_reconsent_asks_for_it_again(
    client, admin_user, manager_a, store_a, document
):
    customer = CustomerFactory(home_store=store_a)
    processing_consent_record(customer=customer, actor=manager_a, method="till_screen")
    today = timezone.localdate()
    # A wording fix that needs no new consent keeps the old one valid...
    ProcessingConsentDocument.objects.create(
        version="2026-01", text="Уточнённый текст", effective_from=today - dt.timedelta(days=3)
    )
    customer.refresh_from_db()
    assert processing_state(customer) == ProcessingState.VALID
    # ...a new purpose does not, and the card, the list filter and segments say so.
    newer = ProcessingConsentDocument.objects.create(
        version="2026-12", text="Новые цели", effective_from=today, requires_reconsent=True
    )
    assert processing_state(customer) == ProcessingState.RECONSENT
    client.force_login(admin_user)
    card = client.get(customer.get_absolute_url()).content.decode()
    assert 'data-state="reconsent"' in card
    listed = client.get("/customers/", {"processing": "reconsent"}).content.decode()
    assert customer.surname in listed
    rule = {
        "op": "and",
        "rules": [{"field": "processing_consent", "op": "in", "value": ["reconsent"]}],
    }
    assert list(Customer.objects.filter(compile_rules(rule)).values_list("pk", flat=True)) == [
        customer.pk
    ]
    processing_consent_record(customer=customer, actor=manager_a, method="paper", paper_number="9")
    customer.refresh_from_db()
    assert customer.processing_document == newer
    assert processing_state(customer) == ProcessingState.VALID


def test_withdrawal_stops_a_campaign_already_in_progress(client, smtp, marketer, store_a, document):
    one = campaign_customer(store_a, email="first@mail.ru")
    two = campaign_customer(store_a, email="leaving@mail.ru")
    campaign = make_campaign(marketer)
    campaign_start(actor=marketer, campaign=campaign)
    # The worker sends one message (whichever it claims first), then the other customer
    # withdraws mid-campaign.
    delivery.send_some(campaign_id=campaign.pk, worker="w1", stop=lambda: len(smtp.messages) >= 1)
    sent = smtp.recipients()
    assert len(sent) == 1
    first, leaving = (one, two) if sent == [one.email] else (two, one)
    response = client.post(
        f"/privacy/withdraw/{withdrawal_token(leaving)}/", HTTP_LIST_UNSUBSCRIBE="One-Click"
    )
    assert response.status_code == 200
    while delivery.send_some(campaign_id=campaign.pk, worker="w1", max_seconds=30):
        pass
    assert smtp.recipients() == [first.email]
    message = Message.objects.get(customer=leaving)
    assert (message.state, message.skip_reason) == ("skipped", "no_consent")
    leaving.refresh_from_db()
    assert leaving.processing_withdrawn_at is not None
    assert leaving.erasure_due_at is not None
    assert not any(getattr(leaving, f"consent_{c}") for c in ("email", "sms", "messenger"))
    assert ConsentEvent.objects.filter(customer=leaving, granted=False, channel="email").exists()
    assert first.pk != leaving.pk


def test_withdrawal_link_get_only_asks_and_a_forged_token_is_404(client, store_a, document):
    customer = CustomerFactory(home_store=store_a, consent_email=True)
    url = f"/privacy/withdraw/{withdrawal_token(customer)}/"
    assert client.get(url).status_code == 200
    customer.refresh_from_db()
    assert customer.processing_withdrawn_at is None
    assert client.get(url[:-3] + "x/").status_code == 404
    assert client.post(url).status_code == 200
    customer.refresh_from_db()
    assert customer.processing_withdrawn_at is not None
    assert not customer.consent_email


def test_withdrawal_by_api_and_no_mailing_consent_afterwards(admin_user, store_a, document):
    from rest_framework.test import APIClient

    from customers.services import consent_set

    customer = CustomerFactory(home_store=store_a, consent_sms=True)
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post(f"/api/v1/customers/{customer.pk}/processing-consent/withdraw/")
    assert response.status_code == 200
    assert response.json()["state"] == "withdrawn"
    customer.refresh_from_db()
    assert not customer.consent_sms
    import pytest
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        consent_set(customer=customer, channel="sms", granted=True, source="web", actor=admin_user)


def test_withdrawal_api_of_an_invisible_customer_is_404(manager_b, store_a, document):
    from rest_framework.test import APIClient

    customer = CustomerFactory(home_store=store_a)
    api = APIClient()
    api.force_authenticate(manager_b)
    response = api.post(f"/api/v1/customers/{customer.pk}/processing-consent/withdraw/")
    assert response.status_code == 404


def test_a_till_records_consent_for_an_existing_card_and_an_outsider_gets_404(
    pos_a, store_a, store_b, document
):
    mine = CustomerFactory(home_store=store_a)
    response = pos_a.post(f"/api/v1/customers/{mine.pk}/processing-consent/", {}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "valid"
    assert ProcessingConsent.objects.get(customer=mine).method == "till_screen"
    bad = pos_a.post(
        f"/api/v1/customers/{mine.pk}/processing-consent/", {"method": "telepathy"}, format="json"
    )
    assert bad.status_code == 400 and "method" in bad.json()["error"]["fields"]
    other = CustomerFactory(home_store=store_b)
    response = pos_a.post(f"/api/v1/customers/{other.pk}/processing-consent/", {}, format="json")
    assert response.status_code == 404
    assert not ProcessingConsent.objects.filter(customer=other).exists()


def test_withdrawal_works_even_with_no_document_ever_in_force(client, store_a):
    ProcessingConsentDocument.objects.all().delete()
    customer = CustomerFactory(home_store=store_a, consent_email=True)
    assert client.post(f"/privacy/withdraw/{withdrawal_token(customer)}/").status_code == 200
    customer.refresh_from_db()
    assert customer.processing_withdrawn_at is not None and not customer.consent_email
    assert processing_state(customer) == ProcessingState.WITHDRAWN
