"""Issue 15, defects 1-3: follow-ups close everywhere, Today is not capped, cards never vanish,
consent is recorded per channel at sign-up (web and API)."""

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import ConsentEvent, Contact, Customer
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _overdue(customer, staff, count, start_days=10):
    today = timezone.localdate()
    return [
        ContactFactory(
            customer=customer,
            staff=staff,
            next_step=f"Старое дело {i}",
            due_date=today - dt.timedelta(days=start_days + i),
        )
        for i in range(count)
    ]


def test_today_shows_todays_items_even_behind_a_long_overdue_backlog(client, admin_user, anna):
    _overdue(anna, admin_user, 60)
    today = timezone.localdate()
    for i in range(7):
        ContactFactory(customer=anna, staff=admin_user, next_step=f"Сегодня {i}", due_date=today)
    client.force_login(admin_user)
    body = client.get("/").content.decode()
    for i in range(7):
        assert f"Сегодня {i}" in body
    # Today's come first, then the most recently overdue; the rest is on later pages.
    assert body.index("Сегодня 0") < body.index("Старое дело 0")
    assert 'data-testid="followups-next"' in body
    page3 = client.get("/", {"page": 3}).content.decode()
    assert "Старое дело 59" in page3


def test_today_page_query_count_does_not_grow_with_backlog(
    client, manager_a, anna, django_assert_max_num_queries
):
    _overdue(anna, manager_a, 80)
    client.force_login(manager_a)
    with django_assert_max_num_queries(20):
        response = client.get("/")
    assert response.status_code == 200


def test_overdue_follow_up_has_done_on_today_and_closes(client, manager_a, anna):
    item = _overdue(anna, manager_a, 1)[0]
    client.force_login(manager_a)
    body = client.get("/").content.decode()
    assert f"/customers/{anna.pk}/contacts/{item.pk}/done/" in body
    response = client.post(f"/customers/{anna.pk}/contacts/{item.pk}/done/", {"next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    item.refresh_from_db()
    assert item.done_at is not None
    assert "Старое дело 0" not in client.get("/").content.decode()


def test_card_contact_log_offers_done_for_open_follow_ups(client, manager_a, anna):
    item = _overdue(anna, manager_a, 1)[0]
    client.force_login(manager_a)
    body = client.get(f"/customers/{anna.pk}/").content.decode()
    assert f"/customers/{anna.pk}/contacts/{item.pk}/done/" in body
    client.post(f"/customers/{anna.pk}/contacts/{item.pk}/done/")
    body = client.get(f"/customers/{anna.pk}/").content.decode()
    assert 'data-testid="followup-closed"' in body


def test_done_never_redirects_off_site(client, manager_a, anna):
    item = _overdue(anna, manager_a, 1)[0]
    client.force_login(manager_a)
    response = client.post(
        f"/customers/{anna.pk}/contacts/{item.pk}/done/", {"next": "https://evil.example/"}
    )
    assert response["Location"] == f"/customers/{anna.pk}/"


def test_associate_cannot_close_someone_elses_follow_up(client, associate_a, manager_a, anna):
    item = _overdue(anna, manager_a, 1)[0]
    client.force_login(associate_a)
    response = client.post(f"/customers/{anna.pk}/contacts/{item.pk}/done/")
    assert response.status_code == 403
    assert Contact.objects.get(pk=item.pk).done_at is None


def test_contact_form_defaults_to_outbound_call(client, manager_a, anna):
    client.force_login(manager_a)
    body = client.get(f"/customers/{anna.pk}/").content.decode()
    assert '<option value="phone" selected>' in body
    assert '<option value="out" selected>' in body


# --- Defect 2: a card never vanishes ------------------------------------------------------------


def test_new_card_form_defaults_home_store_to_the_managers_store(client, manager_a, store_a):
    client.force_login(manager_a)
    body = client.get("/customers/new/").content.decode()
    assert f'<option value="{store_a.pk}" selected>' in body


def test_new_card_posted_without_store_is_filed_under_the_managers(client, manager_a, store_a):
    client.force_login(manager_a)
    response = client.post(
        "/customers/new/", {"surname": "Егоров", "first_name": "Пётр", "lifecycle_stage": "lead"}
    )
    customer = Customer.objects.get(surname="Егоров")
    assert customer.home_store_id == store_a.pk
    assert response["Location"] == customer.get_absolute_url()


def test_card_created_without_store_stays_visible_to_its_creator(client, manager_a, store_a):
    from customers.services import customer_create

    customer = customer_create(actor=manager_a, surname="Егоров", first_name="Пётр")
    assert customer.home_store_id == store_a.pk
    client.force_login(manager_a)
    assert client.get(customer.get_absolute_url()).status_code == 200
    assert "Егоров" in client.get("/customers/", {"q": "Егоров"}).content.decode()


def test_manager_without_store_becomes_the_assigned_manager(client, db):
    from crm import roles
    from customers.services import customer_create
    from tests.factories import UserFactory

    lonely = UserFactory(username="lonely", role=roles.STORE_MANAGER)
    customer = customer_create(actor=lonely, surname="Егоров")
    assert customer.assigned_manager_id == lonely.pk
    client.force_login(lonely)
    assert client.get(customer.get_absolute_url()).status_code == 200


def test_api_card_without_store_gets_the_creators_store(client, manager_a, store_a):
    client.force_login(manager_a)
    response = client.post(
        "/api/v1/customers/", {"surname": "Егоров"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["home_store"] == store_a.pk
    assert client.get(f"/api/v1/customers/{response.json()['id']}/").status_code == 200


def test_api_refuses_a_store_the_manager_does_not_work_in(client, manager_a, store_b):
    client.force_login(manager_a)
    response = client.post(
        "/api/v1/customers/",
        {"surname": "Егоров", "home_store": store_b.pk},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "home_store" in response.json()["error"]["fields"]
    assert not Customer.objects.filter(surname="Егоров").exists()


# --- Defect 3: consent at sign-up ---------------------------------------------------------------


def test_associate_records_consent_per_channel_at_sign_up(client, associate_a, store_a):
    client.force_login(associate_a)
    body = client.get("/customers/new/").content.decode()
    assert 'name="consent_sms"' in body and 'name="consent_method"' in body
    response = client.post(
        "/customers/new/",
        {
            "surname": "Егорова",
            "first_name": "Алёна",
            "phones": "8 916 529-56-12",
            "lifecycle_stage": "lead",
            "home_store": store_a.pk,
            "consent_sms": "on",
            "consent_email": "on",
            "consent_method": "paper",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    customer = Customer.objects.get(surname="Егорова")
    assert customer.consent_sms and customer.consent_email and not customer.consent_phone
    events = ConsentEvent.objects.filter(customer=customer)
    assert {(e.channel, e.granted, e.source, e.method, e.actor_id) for e in events} == {
        ("sms", True, "web", "paper", associate_a.pk),
        ("email", True, "web", "paper", associate_a.pk),
    }


def test_sign_up_consent_needs_how_the_customer_agreed(client, associate_a, store_a):
    client.force_login(associate_a)
    response = client.post(
        "/customers/new/",
        {
            "surname": "Егорова",
            "lifecycle_stage": "lead",
            "home_store": store_a.pk,
            "consent_sms": "on",
            "consent_method": "",
        },
    )
    assert response.status_code == 400
    assert 'data-error-for="consent_method"' in response.content.decode()
    assert not Customer.objects.filter(surname="Егорова").exists()


def test_associate_may_record_consent_on_a_card_they_created(client, associate_a, store_a):
    client.force_login(associate_a)
    client.post(
        "/customers/new/",
        {"surname": "Егорова", "lifecycle_stage": "lead", "home_store": store_a.pk},
    )
    customer = Customer.objects.get(surname="Егорова")
    body = client.get(customer.get_absolute_url()).content.decode()
    assert 'data-channel="sms"' in body
    assert "disabled" not in body[body.index('data-testid="consent-flags"') :][:1500]
    response = client.post(
        f"/customers/{customer.pk}/consent/",
        {"channel": "sms", "granted": "on", "method": "in_person"},
    )
    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).consent_sms


def test_associate_may_not_change_consent_on_other_cards(client, associate_a, anna):
    client.force_login(associate_a)
    response = client.post(f"/customers/{anna.pk}/consent/", {"channel": "sms", "granted": "on"})
    assert response.status_code == 403


def test_api_records_consent_with_source_and_method(client, manager_a, store_a):
    client.force_login(manager_a)
    response = client.post(
        "/api/v1/customers/",
        {"surname": "Егоров", "consent": {"email": True, "method": "electronic"}},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    event = ConsentEvent.objects.get(customer_id=response.json()["id"])
    assert (event.channel, event.granted, event.source, event.method) == (
        "email",
        True,
        "api",
        "electronic",
    )


def test_api_rejects_an_unknown_consent_method(client, manager_a):
    client.force_login(manager_a)
    response = client.post(
        "/api/v1/customers/",
        {"surname": "Егоров", "consent": {"email": True, "method": "telepathy"}},
        content_type="application/json",
    )
    assert response.status_code == 400


# --- Defects 10-12 ------------------------------------------------------------------------------


def test_csv_export_writes_labels_and_local_dates(client, admin_user, anna):
    import csv
    import io

    from customers.models import Customer

    Customer.objects.filter(pk=anna.pk).update(gender="f", consent_sms=True)
    client.force_login(admin_user)
    client.cookies["django_language"] = "ru"
    response = client.post("/customers/export.csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header, body = rows[0], rows[1:]
    row = next(r for r in body if r[1] == "Иванова")
    record = dict(zip(header, row, strict=True))
    assert record["пол"] == "Женский"
    assert record["стадия"] not in ("customer", "lead")
    assert "True" not in row and "False" not in row
    assert record["дата рождения"] == "14.03.1985"
    local = timezone.localtime(Customer.objects.get(pk=anna.pk).created_at)
    assert record["создано"] == local.strftime("%d.%m.%Y %H:%M")


def test_return_in_purchase_history_names_the_product(client, manager_a, anna):
    from decimal import Decimal

    from sales.services import return_record
    from tests.customers.web.conftest import add_receipts

    receipt = add_receipts(anna, 1)[0]
    line = receipt.lines.first()
    return_record(
        store=receipt.store,
        receipt=receipt,
        pos_return_id="R-1",
        returned_at=timezone.now(),
        lines=[(line.line_no, Decimal("1"))],
    )
    client.force_login(manager_a)
    body = client.get(f"/customers/{anna.pk}/").content.decode()
    cell = body[body.index('data-testid="return-line"') :][:300]
    assert line.product.name in cell


def test_leads_list_shows_phone_and_stage(client, manager_a, store_a):
    from tests.factories import CustomerFactory

    lead = CustomerFactory(surname="Лидова", home_store=store_a, lifecycle_stage="lead")
    ContactFactory(customer=lead, staff=manager_a)
    client.force_login(manager_a)
    body = client.get("/customers/leads/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    row = body[body.index("Лидова") :][:600]
    assert 'data-testid="lead-phone">+7 916' in row
    assert 'data-testid="lead-stage">Лид' in row


def test_unknown_page_is_a_russian_404_with_navigation(client, manager_a):
    client.force_login(manager_a)
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="ru")
    body = response.content.decode()
    assert response.status_code == 404
    assert "Страница не найдена" in body and 'data-testid="error-page"' in body
    assert 'href="/customers/"' in body and 'data-nav="today"' in body


def test_recent_vips_show_their_last_purchase_date(client, admin_user, anna):
    from analytics.models import CustomerMetrics

    bought = timezone.now() - dt.timedelta(days=3)
    CustomerMetrics.objects.update_or_create(
        customer=anna,
        defaults={"value_class": "VIP", "last_purchase_at": bought, "computed_at": bought},
    )
    client.force_login(admin_user)
    body = client.get("/").content.decode()
    assert f'data-testid="vip-date">{timezone.localtime(bought):%d.%m.%Y}<' in body


def test_role_and_permission_names_read_in_russian():
    from django.contrib.auth.models import Permission
    from django.utils import translation

    from crm.roles import permission_label, role_label

    with translation.override("ru"):
        assert role_label("Store manager") == "Управляющий магазином"
        export = Permission.objects.get(codename="export_customers")
        assert permission_label(export) == "Может выгружать списки клиентов"
        add = Permission.objects.get(codename="add_customer")
        assert permission_label(add) == "Может добавлять: клиент"


# --- Saved list filters -------------------------------------------------------------------------


def test_saved_filters_are_per_user_and_reopen_the_list(client, manager_a, manager_b, anna):
    from customers.models import SavedFilter

    client.force_login(manager_a)
    body = client.get("/customers/", {"q": "Иванова", "stage": "customer"}).content.decode()
    assert 'data-testid="save-filter-form"' in body
    response = client.post(
        "/customers/filters/", {"name": "Ивановы", "query": "q=Иванова&stage=customer&after=x"}
    )
    assert response.status_code == 302
    saved = SavedFilter.objects.get(user=manager_a)
    assert saved.query == "q=%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2%D0%B0&stage=customer"
    body = client.get("/customers/").content.decode()
    assert 'data-testid="saved-filter"' in body and "Ивановы" in body
    assert "Иванова Анна" in client.get("/customers/?" + saved.query).content.decode()
    client.force_login(manager_b)
    assert "Ивановы" not in client.get("/customers/").content.decode()
    assert client.post(f"/customers/filters/{saved.pk}/delete/").status_code == 404
    client.force_login(manager_a)
    client.post(f"/customers/filters/{saved.pk}/delete/")
    assert not SavedFilter.objects.exists()


def test_saving_an_empty_filter_is_refused(client, manager_a):
    from customers.models import SavedFilter

    client.force_login(manager_a)
    client.post("/customers/filters/", {"name": "Пусто", "query": ""})
    client.post("/customers/filters/", {"name": "", "query": "q=x"})
    assert not SavedFilter.objects.exists()
