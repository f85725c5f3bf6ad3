"""Merging cards: source priority, consent, everything moved, old ids and cards resolving, undo,
scope, the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import AuditAction, AuditEvent
from customers.duplicates.merge import customer_merge, customer_merge_undo
from customers.duplicates.models import MergedAlias, SourcePriority
from customers.models import ConsentEvent, Contact, Customer, CustomerPhone, Source
from customers.services import consent_set
from sales.apikeys import pos_key_issue
from sales.models import Receipt
from tests.factories import ContactFactory, CustomerFactory, ReceiptFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(store_a):
    """The same woman twice: signed up at the till, then typed in by an associate."""
    pos = CustomerFactory(
        surname="Иванова",
        first_name="Мария",
        patronymic="",
        city="",
        email="",
        source=Source.POS,
        card_number="100200",
        home_store=store_a,
        phone_number="+79161112201",
    )
    web = CustomerFactory(
        surname="Иванова-Петрова",
        first_name="Маша",
        patronymic="Ивановна",
        city="Москва",
        email="masha@example.ru",
        source=Source.WEB,
        card_number="2002",
        home_store=store_a,
        phone_number="+79161112202",
    )
    return pos, web


def test_fields_come_from_the_source_with_the_higher_priority(admin_user, pair):
    pos, web = pair
    merge = customer_merge(actor=admin_user, survivor_id=web.pk, absorbed_ids=[pos.pk])
    survivor = Customer.objects.get(pk=web.pk)
    # POS outranks the web form by default: its non-empty values win.
    assert (survivor.surname, survivor.first_name) == ("Иванова", "Мария")
    # Where the POS card is empty, the web card's value is kept.
    assert (survivor.patronymic, survivor.city, survivor.email) == (
        "Ивановна",
        "Москва",
        "masha@example.ru",
    )
    assert survivor.card_number == "2002", "the survivor keeps its own card number"
    assert not Customer.objects.filter(pk=pos.pk).exists()
    assert merge.absorbed_ids == [pos.pk]


def test_the_admins_order_of_sources_and_a_hand_pick_decide(admin_user, pair):
    pos, web = pair
    SourcePriority.objects.filter(source="web").update(rank=0)
    customer_merge(
        actor=admin_user,
        survivor_id=pos.pk,
        absorbed_ids=[web.pk],
        choices={"first_name": pos.pk},
    )
    survivor = Customer.objects.get(pk=pos.pk)
    assert survivor.surname == "Иванова-Петрова"  # web now ranks first
    assert survivor.first_name == "Мария"  # picked by hand


def test_consent_withdrawal_on_any_card_wins(admin_user, pair):
    pos, web = pair
    consent_set(customer=pos, channel="email", granted=True, source="pos")
    consent_set(customer=web, channel="email", granted=True, source="web")
    consent_set(customer=web, channel="email", granted=False, source="unsubscribe")
    consent_set(customer=pos, channel="sms", granted=True, source="pos")
    customer_merge(actor=admin_user, survivor_id=pos.pk, absorbed_ids=[web.pk])
    survivor = Customer.objects.get(pk=pos.pk)
    assert survivor.consent_email is False
    assert survivor.consent_sms is True
    # The whole history of both cards is now the survivor's, plus the merge's own record.
    assert ConsentEvent.objects.filter(customer=survivor, channel="email").count() == 4


def test_phones_receipts_and_contacts_move_to_the_survivor(admin_user, pair, store_a):
    pos, web = pair
    receipt = ReceiptFactory(store=store_a, customer=web)
    contact = ContactFactory(customer=web)
    customer_merge(actor=admin_user, survivor_id=pos.pk, absorbed_ids=[web.pk])
    assert Receipt.objects.get(pk=receipt.pk).customer_id == pos.pk
    assert Contact.objects.get(pk=contact.pk).customer_id == pos.pk
    assert set(CustomerPhone.objects.filter(customer=pos).values_list("number", "is_primary")) == {
        ("+79161112201", True),
        ("+79161112202", False),
    }
    audit = AuditEvent.objects.get(action=AuditAction.CUSTOMER_MERGE)
    assert set(audit.details["before"]) == {str(pos.pk), str(web.pk)}
    assert audit.details["after"]["id"] == pos.pk


def test_old_id_and_old_card_keep_resolving(admin_user, pair, client, store_a):
    pos, web = pair
    customer_merge(actor=admin_user, survivor_id=pos.pk, absorbed_ids=[web.pk])
    client.force_login(admin_user)
    response = client.get(f"/customers/{web.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/customers/{pos.pk}/"
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.get(f"/api/v1/customers/{web.pk}/")
    assert response.status_code == 301
    assert response.json() == {"merged_into": pos.pk}
    assert response["Location"].endswith(f"/api/v1/customers/{pos.pk}/")
    till = APIClient()
    till.credentials(HTTP_AUTHORIZATION=f"Api-Key {pos_key_issue(store=store_a, name='t').raw}")
    response = till.get("/api/v1/customers/lookup/", {"card": "2002"})
    assert response.status_code == 200 and response.json()["id"] == pos.pk
    # A receipt the till sends with the old card lands on the survivor.
    payload = {
        "pos_receipt_id": "OLD-CARD-1",
        "purchased_at": timezone.now().isoformat(),
        "payment_method": "card",
        "card": "2002",
        "lines": [{"sku": "S-1", "quantity": "1", "unit_price": "100.00", "name": "Носки"}],
        "total": "100.00",
    }
    response = till.post("/api/v1/receipts/", payload, format="json")
    assert response.status_code == 201, response.content
    assert Receipt.objects.get(pos_receipt_id="OLD-CARD-1").customer_id == pos.pk


def test_undo_restores_both_cards(admin_user, pair, store_a):
    pos, web = pair
    receipt = ReceiptFactory(store=store_a, customer=web)
    contact = ContactFactory(customer=web)
    consent_set(customer=web, channel="sms", granted=True, source="web")
    before = {
        c.pk: (c.surname, c.first_name, c.city, c.email, c.card_number, c.phone)
        for c in Customer.objects.filter(pk__in=[pos.pk, web.pk])
    }
    merge = customer_merge(actor=admin_user, survivor_id=pos.pk, absorbed_ids=[web.pk])
    customer_merge_undo(actor=admin_user, merge=merge)
    after = {
        c.pk: (c.surname, c.first_name, c.city, c.email, c.card_number, c.phone)
        for c in Customer.objects.filter(pk__in=[pos.pk, web.pk])
    }
    assert after == before
    assert Receipt.objects.get(pk=receipt.pk).customer_id == web.pk
    assert Contact.objects.get(pk=contact.pk).customer_id == web.pk
    assert list(CustomerPhone.objects.filter(customer=web).values_list("number", "is_primary")) == [
        ("+79161112202", True)
    ]
    assert Customer.objects.get(pk=web.pk).consent_sms is True
    assert not MergedAlias.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.MERGE_UNDO).count() == 1


def test_undo_is_refused_after_the_window(admin_user, pair, settings):
    from django.core.exceptions import ValidationError

    pos, web = pair
    merge = customer_merge(actor=admin_user, survivor_id=pos.pk, absorbed_ids=[web.pk])
    merge.at -= dt.timedelta(days=settings.CLIENTELE_MERGE_UNDO_DAYS + 1)
    merge.save()
    with pytest.raises(ValidationError):
        customer_merge_undo(actor=admin_user, merge=merge)


def test_three_cards_merge_into_one(admin_user, pair, store_a):
    pos, web = pair
    third = CustomerFactory(
        surname="Иванова", home_store=store_a, card_number="3003", phone_number="+79161112203"
    )
    customer_merge(actor=admin_user, survivor_id=pos.pk, absorbed_ids=[web.pk, third.pk])
    assert Customer.objects.filter(pk__in=[web.pk, third.pk]).count() == 0
    assert CustomerPhone.objects.filter(customer=pos).count() == 3
    assert set(MergedAlias.objects.values_list("old_card_number", flat=True)) == {"2002", "3003"}


def test_manager_cannot_merge_a_card_outside_their_scope(manager_a, store_a, store_b):
    mine = CustomerFactory(home_store=store_a, phone_number="+79161112201")
    theirs = CustomerFactory(home_store=store_b, phone_number="+79161112202")
    with pytest.raises(Customer.DoesNotExist):
        customer_merge(actor=manager_a, survivor_id=mine.pk, absorbed_ids=[theirs.pk])
    assert Customer.objects.filter(pk=theirs.pk).exists()
    api = APIClient()
    api.force_authenticate(manager_a)
    response = api.post(
        "/api/v1/customers/merge/",
        {"survivor_id": mine.pk, "absorbed_ids": [theirs.pk]},
        format="json",
    )
    assert response.status_code == 404
    assert Customer.objects.filter(pk=theirs.pk).exists()


def test_manager_merges_within_scope(manager_a, store_a):
    one = CustomerFactory(home_store=store_a, phone_number="+79161112201")
    two = CustomerFactory(home_store=store_a, phone_number="+79161112202")
    customer_merge(actor=manager_a, survivor_id=one.pk, absorbed_ids=[two.pk])
    assert not Customer.objects.filter(pk=two.pk).exists()


def test_merge_api(admin_user, pair):
    pos, web = pair
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post(
        "/api/v1/customers/merge/",
        {"survivor_id": pos.pk, "absorbed_ids": [web.pk], "choices": {"city": web.pk}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["survivor_id"] == pos.pk
    assert Customer.objects.get(pk=pos.pk).city == "Москва"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"survivor_id": "x", "absorbed_ids": [2]},
        {"survivor_id": 1, "absorbed_ids": []},
        {"survivor_id": 1, "absorbed_ids": [1]},
        {"survivor_id": 1, "absorbed_ids": [2], "choices": {"password": 1}},
        {"survivor_id": 2**70, "absorbed_ids": [2]},
    ],
)
def test_merge_api_bad_input_is_a_400_with_fields(admin_user, pair, body):
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post("/api/v1/customers/merge/", body, format="json")
    assert response.status_code in (400, 404)
    assert "error" in response.json()


def test_merge_api_needs_the_change_permission(marketer, pair):
    pos, web = pair
    api = APIClient()
    api.force_authenticate(marketer)
    response = api.post(
        "/api/v1/customers/merge/", {"survivor_id": pos.pk, "absorbed_ids": [web.pk]}, format="json"
    )
    assert response.status_code == 403
    assert Customer.objects.filter(pk=web.pk).exists()


def test_merge_screen_side_by_side(client, admin_user, pair, django_assert_max_num_queries):
    pos, web = pair
    client.force_login(admin_user)
    with django_assert_max_num_queries(25):
        page = client.get(f"/customers/merge/?ids={pos.pk},{web.pk}")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Иванова-Петрова" in body and f'name="f_surname" value="{pos.pk}"' in body
    response = client.post(
        "/customers/merge/",
        {
            "ids": f"{pos.pk},{web.pk}",
            "survivor": str(web.pk),
            "f_city": str(web.pk),
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/customers/{web.pk}/"
    assert not Customer.objects.filter(pk=pos.pk).exists()


def _checked(body: str) -> dict[str, str]:
    """What the browser posts from the screen as it comes: each checked radio's name and value."""
    import re

    found = {}
    for tag in re.findall(r"<input[^>]*type=\"radio\"[^>]*>", body):
        if re.search(r"\schecked[\s>]", tag):
            name = re.search(r'name="([^"]+)"', tag).group(1)
            found[name] = re.search(r'value="([^"]+)"', tag).group(1)
    return found


def test_the_screens_own_proposal_merges_when_the_older_card_has_its_own_loyalty_card(
    client, admin_user, pair
):
    """Two cards with loyalty cards, the older one (which stays by default) from the lower
    source: the proposal must not take the other card's number for it, or "Merge" as offered
    is refused ("The card that stays keeps its own loyalty card")."""
    pos, web = pair
    Customer.objects.filter(pk=web.pk).update(created_at=pos.created_at - dt.timedelta(days=30))
    client.force_login(admin_user)
    body = client.get(f"/customers/merge/?ids={pos.pk},{web.pk}").content.decode()
    form = _checked(body)
    assert form["survivor"] == str(web.pk) and form["f_card_number"] == str(web.pk)
    assert form["f_surname"] == str(pos.pk)  # the POS still wins the other fields
    response = client.post("/customers/merge/", {"ids": f"{pos.pk},{web.pk}", **form})
    assert response.status_code == 302, response.content.decode()[:3000]
    survivor = Customer.objects.get(pk=web.pk)
    assert (survivor.card_number, survivor.surname) == ("2002", "Иванова")
    assert MergedAlias.objects.filter(old_card_number="100200", survivor=survivor).exists()


def test_a_refused_merge_shows_the_users_choices_again(client, admin_user, pair):
    pos, web = pair
    client.force_login(admin_user)
    response = client.post(
        "/customers/merge/",
        {
            "ids": f"{pos.pk},{web.pk}",
            "survivor": str(web.pk),
            "f_card_number": str(pos.pk),
            "f_city": str(web.pk),
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "сохраняет свою карту лояльности" in body
    form = _checked(body)
    assert (form["survivor"], form["f_card_number"], form["f_city"]) == (
        str(web.pk),
        str(pos.pk),
        str(web.pk),
    )
    assert Customer.objects.filter(pk=pos.pk).exists()


def test_merge_screen_is_404_outside_scope(client, manager_a, store_b, store_a):
    mine = CustomerFactory(home_store=store_a, phone_number="+79161112201")
    theirs = CustomerFactory(home_store=store_b, phone_number="+79161112202")
    client.force_login(manager_a)
    assert client.get(f"/customers/merge/?ids={mine.pk},{theirs.pk}").status_code == 404


def test_merge_screen_counts_each_card_against_the_daily_cap(client, manager_a, pair, settings):
    """The side-by-side screen is a card read per card: audited and counted, masked past the cap,
    so a pair of ids at a time is no way around the allowance."""
    from customers.disclosure import taken_today

    settings.CLIENTELE_UNMASKED_DAILY_CAP = 1
    pos, web = pair
    client.force_login(manager_a)
    page = client.get(f"/customers/merge/?ids={pos.pk},{web.pk}")
    assert page.status_code == 200
    body = page.content.decode()
    assert "+79161112201" in body  # the first card is within the allowance
    assert "masha@example.ru" not in body and "+79161112202" not in body
    assert "дневной лимит в 1 карточек" in body
    assert taken_today(manager_a) == 1
    reads = AuditEvent.objects.filter(actor=manager_a, action=AuditAction.CUSTOMER_VIEW)
    assert {e.object_id for e in reads} >= {str(pos.pk), str(web.pk)}
    assert AuditEvent.objects.filter(actor=manager_a, action=AuditAction.CONTACTS_CAPPED).exists()


def test_tags_custom_fields_and_consent_history_move_to_the_survivor(admin_user, pair):
    from customers.models import Tag

    pos, web = pair
    vip, new = Tag.objects.create(name="VIP-тест"), Tag.objects.create(name="Новый-тест")
    pos.tags.add(new)
    web.tags.add(vip)
    Customer.objects.filter(pk=web.pk).update(custom_fields={"shoe_size": "38"})
    consent_set(customer=web, channel="email", granted=True, source=Source.WEB, actor=admin_user)
    history = ConsentEvent.objects.filter(customer=web).count()
    assert history >= 1
    customer_merge(actor=admin_user, survivor_id=pos.pk, absorbed_ids=[web.pk])
    survivor = Customer.objects.get(pk=pos.pk)
    assert set(survivor.tags.values_list("name", flat=True)) == {"VIP-тест", "Новый-тест"}
    assert survivor.custom_fields.get("shoe_size") == "38"
    # The absorbed card's consent history is kept on the survivor, not dropped with the card.
    assert ConsentEvent.objects.filter(customer=survivor, source=Source.WEB).count() >= history
