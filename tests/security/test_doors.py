"""Way out 8, the smaller doors: API create into other stores, cross-store look-up by email,
open redirects, tokens that outlive a password, long sessions, a talkative /healthz."""

import pytest
from rest_framework.test import APIClient

from crm.api_tokens import user_token_issue
from crm.models import UserApiToken
from customers.models import Customer
from tests.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


@pytest.fixture
def api_client():
    return APIClient()


# --- API card creation only into the user's own stores -------------------------------------


def test_api_create_refuses_a_home_store_outside_the_users_stores(
    api_client, manager_a, store_a, store_b
):
    api_client.force_authenticate(manager_a)

    refused = api_client.post(
        "/api/v1/customers/", {"surname": "Чужая", "home_store": store_b.pk}, format="json"
    )
    accepted = api_client.post(
        "/api/v1/customers/", {"surname": "Своя", "home_store": store_a.pk}, format="json"
    )

    assert refused.status_code == 400
    assert "home_store" in refused.json()["error"]["fields"]
    assert not Customer.objects.filter(surname="Чужая").exists()
    assert accepted.status_code == 201


# --- cross-store look-up only by exact phone or card ----------------------------------------


@pytest.fixture
def boris(store_b):
    return CustomerFactory(
        surname="Петров",
        first_name="Борис",
        email="boris.petrov@mail.ru",
        card_number="5500123",
        home_store=store_b,
        phone_number="+79169876543",
    )


def test_duplicates_helper_does_not_find_other_store_customers_by_email(client, associate_a, boris):
    client.force_login(associate_a)
    page = client.get("/customers/new/duplicates/", {"email": "boris.petrov@mail.ru"})
    assert page.status_code == 200
    assert "Петров" not in page.content.decode() and "5500123" not in page.content.decode()


def test_duplicates_helper_still_finds_them_by_exact_phone_or_card(client, associate_a, boris):
    client.force_login(associate_a)
    by_phone = client.get("/customers/new/duplicates/", {"phones": "8 916 987-65-43"})
    by_card = client.get("/customers/new/duplicates/", {"card_number": "5500123"})
    assert "Петров" in by_phone.content.decode() and "Петров" in by_card.content.decode()


def test_duplicates_helper_finds_own_store_customers_by_email(client, associate_a, store_a):
    CustomerFactory(surname="Соседова", email="sosed@mail.ru", home_store=store_a)
    client.force_login(associate_a)
    page = client.get("/customers/new/duplicates/", {"email": "SOSED@mail.ru"})
    assert "Соседова" in page.content.decode()


def test_failed_create_does_not_list_other_store_customers_by_email(client, associate_a, boris):
    # A duplicate phone of one's own customer triggers the helper with the typed email too.
    own = CustomerFactory(
        home_store=associate_a.staff_profile.stores.get(), phone_number="+79160000001"
    )
    client.force_login(associate_a)
    page = client.post(
        "/customers/new/",
        {
            "surname": "Новая",
            "phones": own.phone,
            "email": "boris.petrov@mail.ru",
            "lifecycle_stage": "lead",
        },
    )
    assert page.status_code == 400
    html = page.content.decode()
    assert 'data-testid="duplicate-warning"' in html  # the helper ran, for the phone
    assert "Борис" not in html and "5500123" not in html


# --- `next` only to this site ----------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/login",
        "//evil.example/login",
        "/\\evil.example",
        "javascript:alert(1)",
    ],
)
def test_contact_done_does_not_redirect_off_site(client, manager_a, store_a, target):
    customer = CustomerFactory(home_store=store_a)
    contact = ContactFactory(customer=customer, staff=manager_a)
    client.force_login(manager_a)

    response = client.post(
        f"/customers/{customer.pk}/contacts/{contact.pk}/done/", {"next": target}
    )

    assert response.status_code == 302
    assert response["Location"] == customer.get_absolute_url()


def test_contact_done_follows_a_same_site_next(client, manager_a, store_a):
    customer = CustomerFactory(home_store=store_a)
    contact = ContactFactory(customer=customer, staff=manager_a)
    client.force_login(manager_a)
    response = client.post(
        f"/customers/{customer.pk}/contacts/{contact.pk}/done/", {"next": "/?tab=overdue"}
    )
    assert response["Location"] == "/?tab=overdue"


# --- API tokens end with the password and with the account -----------------------------------


def _token_works(raw: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client.get("/api/v1/customers/").status_code == 200


def test_password_change_revokes_api_tokens(client, manager_a):
    token, raw = user_token_issue(user=manager_a)
    assert _token_works(raw)
    client.force_login(manager_a)

    response = client.post(
        "/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer new secret 42",
            "new_password2": "a much longer new secret 42",
        },
    )

    assert response.status_code == 302
    assert not UserApiToken.objects.filter(user=manager_a).exists()
    assert not _token_works(raw)


def test_deactivation_revokes_api_tokens(manager_a):
    token, raw = user_token_issue(user=manager_a)
    manager_a.is_active = False
    manager_a.save()
    assert not UserApiToken.objects.filter(pk=token.pk).exists()
    manager_a.is_active = True
    manager_a.save()
    assert not _token_works(raw)


def test_other_saves_keep_the_token(manager_a):
    token, raw = user_token_issue(user=manager_a)
    manager_a.first_name = "Борис"
    manager_a.save()
    assert _token_works(raw)


# --- sessions: a working day, or until the browser closes ------------------------------------


def _login(client, username):
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return response.cookies["sessionid"]


def test_session_lasts_twelve_hours_by_default(client, manager_a):
    cookie = _login(client, manager_a.username)
    assert int(cookie["max-age"]) == 12 * 60 * 60


def test_shared_tills_can_end_the_session_with_the_browser(client, manager_a, settings):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    cookie = _login(client, manager_a.username)
    assert not cookie["max-age"] and not cookie["expires"]


# --- /healthz names no host for anonymous callers --------------------------------------------


def test_healthz_tells_anonymous_callers_no_hosts_or_errors(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # down: the driver's error names host and port

    body = client.get("/healthz").json()

    text = str(body)
    assert "127.0.0.1" not in text and "error" not in text
    assert body["status"] == "fail"
    assert body["checks"]["redis"] == {"ok": False}
    assert body["checks"]["celery"] == {"ok": False, "workers": 0}


def test_healthz_gives_administrators_the_details(client, admin_user, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    client.force_login(admin_user)
    body = client.get("/healthz").json()
    assert "127.0.0.1:1" in body["checks"]["redis"]["error"]
