"""Customer endpoints: till look-up and create; list, detail, update, receipts, contacts."""

import pytest
from rest_framework.test import APIClient

from crm.models import AuditEvent
from customers.models import Contact, Customer, Source
from tests.conftest import receipt_payload
from tests.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def anna(store_a):
    return CustomerFactory(
        surname="Иванова",
        first_name="Анна",
        patronymic="Сергеевна",
        home_store=store_a,
        card_number="7700001",
        phone_number="+79161234567",
        consent_sms=True,
    )


@pytest.fixture
def boris(store_b):
    return CustomerFactory(home_store=store_b, card_number="7700002", phone_number="+79167654321")


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- look-up ----------------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["+79161234567", "8 (916) 123-45-67", "9161234567"])
def test_lookup_by_phone_in_any_format_gives_minimal_card(pos_a, anna, phone):
    response = pos_a.get("/api/v1/customers/lookup/", {"phone": phone})

    assert response.status_code == 200
    assert response.json() == {
        "id": anna.pk,
        "display_name": "Анна Сергеевна И.",
        "card_number": "7700001",
        "value_class": None,
        "consent": {
            "email": False,
            "sms": True,
            "messenger": False,
            "phone": False,
            "do_not_contact": False,
        },
        # The welcome bonus of a new card with consent (loyalty).
        "points": {"tier": None, "available": "200.00", "pending": "0.00"},
    }


def test_till_finds_customer_of_another_store_by_exact_card(pos_a, boris):
    response = pos_a.get("/api/v1/customers/lookup/", {"card": "7700002"})
    assert response.status_code == 200
    assert response.json()["id"] == boris.pk


def test_lookup_of_unknown_phone_is_404(pos_a, anna):
    response = pos_a.get("/api/v1/customers/lookup/", {"phone": "+79990000000"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_lookup_needs_exactly_one_identifier(pos_a):
    assert pos_a.get("/api/v1/customers/lookup/").status_code == 400
    both = pos_a.get("/api/v1/customers/lookup/", {"phone": "+79161234567", "card": "1"})
    assert both.status_code == 400


def test_outsider_lookup_is_404(outsider, anna):
    response = as_user(outsider).get("/api/v1/customers/lookup/", {"card": "7700001"})
    assert response.status_code == 404


# --- create -------------------------------------------------------------------------------


def test_till_creates_customer_of_its_store(pos_a, store_a):
    response = pos_a.post(
        "/api/v1/customers/",
        {"first_name": "Олег", "phones": ["8 916 555-44-33"], "consent": {"sms": True}},
        format="json",
    )

    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(pk=response.json()["id"])
    assert customer.home_store == store_a
    assert customer.source == Source.POS
    assert customer.phone == "+79165554433"
    assert customer.consent_sms is True
    # A till never reads contacts back, not even those it typed in.
    assert response.json()["contact_details_masked"] is True
    assert response.json()["phone"] == "+7 916 ***-**-33"


def test_duplicate_phone_is_409_with_existing_id(pos_b, anna):
    response = pos_b.post(
        "/api/v1/customers/", {"first_name": "X", "phones": ["+7 916 123-45-67"]}, format="json"
    )

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["existing_id"] == anna.pk
    assert "phones" in error["fields"]


def test_duplicate_card_is_409_with_existing_id(pos_a, anna):
    response = pos_a.post(
        "/api/v1/customers/", {"first_name": "X", "card_number": "7700001"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["existing_id"] == anna.pk


def test_marketer_cannot_create_customers(marketer):
    response = as_user(marketer).post("/api/v1/customers/", {"first_name": "X"}, format="json")
    assert response.status_code == 403


# --- list and detail ----------------------------------------------------------------------


def test_manager_lists_only_customers_of_own_store_with_cursor_pages(manager_a, store_a, boris):
    own = [CustomerFactory(home_store=store_a) for _ in range(3)]
    client = as_user(manager_a)

    first = client.get("/api/v1/customers/", {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    ids = [c["id"] for c in first["results"] + second["results"]]
    assert ids == [c.pk for c in own]
    assert second["next"] is None


def test_till_lists_nobody(pos_a, anna, boris):
    response = pos_a.get("/api/v1/customers/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "pos_key_not_allowed"


def test_customer_list_filters(admin_user, anna, boris):
    client = as_user(admin_user)
    by_phone = client.get("/api/v1/customers/", {"phone": "8 916 765-43-21"}).json()
    by_store = client.get("/api/v1/customers/", {"home_store": anna.home_store_id}).json()

    assert [c["id"] for c in by_phone["results"]] == [boris.pk]
    assert [c["id"] for c in by_store["results"]] == [anna.pk]
    assert client.get("/api/v1/customers/", {"home_store": "abc"}).status_code == 400


def test_customer_list_query_count_is_flat(admin_user, store_a, django_assert_max_num_queries):
    for _ in range(30):
        CustomerFactory(home_store=store_a)
    client = as_user(admin_user)
    client.get("/api/v1/customers/")  # warm the session and permission caches

    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/customers/")
    assert len(response.json()["results"]) == 30


def test_marketer_sees_masked_contact_details(marketer, anna):
    body = as_user(marketer).get(f"/api/v1/customers/{anna.pk}/").json()
    assert body["phone"] == "+7 916 ***-**-67"
    assert body["contact_details_masked"] is True


def test_key_reads_no_card_by_id_not_even_of_its_store(pos_a, anna, boris):
    assert pos_a.get(f"/api/v1/customers/{boris.pk}/").status_code == 403
    assert pos_a.get(f"/api/v1/customers/{anna.pk}/").status_code == 403


def test_manager_cannot_open_customer_of_other_store(manager_b, anna):
    assert as_user(manager_b).get(f"/api/v1/customers/{anna.pk}/").status_code == 404


def test_outsider_gets_404_on_customer_endpoints(outsider, anna):
    client = as_user(outsider)
    for path in ("", "receipts/", "contacts/"):
        assert client.get(f"/api/v1/customers/{anna.pk}/{path}").status_code == 404
    assert client.patch(f"/api/v1/customers/{anna.pk}/", {}, format="json").status_code == 404
    assert client.get("/api/v1/customers/").json()["results"] == []


def test_huge_customer_id_is_404_not_an_overflow(admin_user):
    assert as_user(admin_user).get(f"/api/v1/customers/{'9' * 30}/").status_code == 404
    assert as_user(admin_user).get(f"/api/v1/customers/{'9' * 18}/").status_code == 404


# --- partial update -------------------------------------------------------------------------


def test_manager_updates_card_and_it_is_audited(manager_a, anna):
    response = as_user(manager_a).patch(
        f"/api/v1/customers/{anna.pk}/", {"city": "Тула", "phones": ["+79160000001"]}, format="json"
    )

    assert response.status_code == 200
    anna.refresh_from_db()
    assert (anna.city, anna.phone) == ("Тула", "+79160000001")
    assert AuditEvent.objects.filter(action="customer_update", object_id=str(anna.pk)).exists()


def test_update_to_a_taken_phone_is_409(manager_a, anna, store_a):
    other = CustomerFactory(home_store=store_a, phone_number="+79160000002")
    response = as_user(manager_a).patch(
        f"/api/v1/customers/{anna.pk}/", {"phones": ["+79160000002"]}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["existing_id"] == other.pk


def test_till_cannot_edit_cards(pos_a, anna, boris):
    assert (
        pos_a.patch(f"/api/v1/customers/{anna.pk}/", {"city": "X"}, format="json").status_code
        == 403
    )
    assert (
        pos_a.patch(f"/api/v1/customers/{boris.pk}/", {"city": "X"}, format="json").status_code
        == 404
    )


# --- receipts and contacts -------------------------------------------------------------------


def test_customer_receipts_newest_first_with_flat_query_count(
    pos_a, anna, django_assert_max_num_queries
):
    for i in range(8):
        pos_a.post(
            "/api/v1/receipts/",
            receipt_payload(
                f"C-{i}", card="7700001", purchased_at=f"2025-01-{i + 1:02d}T10:00:00+03:00"
            ),
            format="json",
        )

    with django_assert_max_num_queries(6):
        response = pos_a.get(f"/api/v1/customers/{anna.pk}/receipts/")

    results = response.json()["results"]
    assert [r["pos_receipt_id"] for r in results] == [f"C-{i}" for i in reversed(range(8))]
    assert results[0]["lines"][0]["sku"] == "DRESS-001"


def test_manager_logs_and_lists_contacts(manager_a, anna):
    client = as_user(manager_a)
    created = client.post(
        f"/api/v1/customers/{anna.pk}/contacts/",
        {"channel": "phone", "direction": "out", "topic": "Новая коллекция"},
        format="json",
    )
    ContactFactory(customer=anna, topic="Старый звонок", at="2024-01-01T10:00:00+03:00")

    listed = client.get(f"/api/v1/customers/{anna.pk}/contacts/").json()["results"]

    assert created.status_code == 201
    assert created.json()["staff"] == manager_a.username
    assert [c["topic"] for c in listed] == ["Новая коллекция", "Старый звонок"]


def test_contact_with_due_date_needs_next_step(manager_a, anna):
    response = as_user(manager_a).post(
        f"/api/v1/customers/{anna.pk}/contacts/",
        {"channel": "phone", "direction": "out", "topic": "T", "due_date": "2030-01-01"},
        format="json",
    )
    assert response.status_code == 400
    assert "next_step" in response.json()["error"]["fields"]
    assert not Contact.objects.exists()


def test_till_cannot_read_contact_log(pos_a, anna):
    assert pos_a.get(f"/api/v1/customers/{anna.pk}/contacts/").status_code == 403
