"""The acceptance scenarios of the manager's web app, in a real chromium."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from crm.models import AuditAction, AuditEvent
from customers.models import Contact
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def anna(store_a):
    return CustomerFactory(
        surname="Иванова",
        first_name="Анна",
        patronymic="Сергеевна",
        email="anna.ivanova@mail.ru",
        card_number="2000123",
        home_store=store_a,
        phone_number="+79161234567",
    )


@pytest.fixture
def boris(store_b):
    return CustomerFactory(
        surname="Петров", first_name="Борис", home_store=store_b, phone_number="+79169876543"
    )


def nav(page):
    return set(page.locator("[data-nav]").evaluate_all("els => els.map(e => e.dataset.nav)"))


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        (
            "admin_user",
            {
                "today",
                "customers",
                "leads",
                "new-card",
                "duplicates",
                "import",
                "campaigns",
                "analytics",
                "audit",
                "admin",
            },
        ),
        ("manager_a", {"today", "customers", "leads", "new-card", "duplicates", "analytics"}),
        ("marketer", {"today", "customers", "leads", "campaigns", "analytics"}),
        ("associate_a", {"today", "customers", "leads", "new-card"}),
    ],
)
def test_sign_in_as_each_role_shows_its_navigation(page, sign_in, request, persona, expected):
    user = request.getfixturevalue(persona)
    sign_in(user.username)
    assert page.locator('[data-testid="username"]').inner_text() == user.username
    assert nav(page) == expected


def test_find_customer_by_phone_typed_as_people_do(page, sign_in, manager_a, anna):
    sign_in("bob")
    page.goto("/customers/")
    page.locator("#search").press_sequentially("8 916 123-45-67", delay=20)
    rows = page.locator('[data-testid="customer-row"]')
    rows.first.wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=customer-row]').length === 1"
    )
    assert "Иванова Анна" in rows.first.inner_text()


def test_find_customer_by_misspelt_surname_and_open_the_card(page, sign_in, manager_a, anna):
    sign_in("bob")
    page.goto("/customers/")
    page.locator("#search").press_sequentially("Иваноав", delay=20)
    link = page.get_by_role("link", name=re.compile("Иванова Анна"))
    link.wait_for()
    link.click()
    page.wait_for_url(f"**/customers/{anna.pk}/")
    assert page.locator('[data-testid="customer-name"]').inner_text().startswith("Иванова Анна")
    assert AuditEvent.objects.filter(
        action=AuditAction.CUSTOMER_VIEW, object_id=str(anna.pk)
    ).exists()


def test_add_contact_with_follow_up_and_see_it_on_today(page, sign_in, manager_a, anna):
    sign_in("bob")
    page.goto(f"/customers/{anna.pk}/")
    page.click('[data-testid="add-contact"]')
    form = page.locator('[data-testid="contact-form"]')
    form.locator("#id_channel").select_option("phone")
    form.locator("#id_direction").select_option("out")
    form.locator("#id_topic").fill("Новая коллекция")
    form.locator("#id_agreement").fill("Придёт в субботу")
    form.locator("#id_next_step").fill("Перезвонить про примерку")
    form.locator("#id_due_date").fill(timezone.localdate().isoformat())
    form.locator('[data-testid="save-contact"]').click()
    page.locator('[data-testid="contact-item"]', has_text="Новая коллекция").wait_for()
    assert Contact.objects.filter(customer=anna, staff=manager_a).count() == 1
    page.click('[data-nav="today"]')
    followups = page.locator('[data-testid="followup-today"]')
    followups.first.wait_for()
    assert "Перезвонить про примерку" in followups.first.inner_text()


def test_edit_a_field_with_a_bad_phone_shows_the_error(page, sign_in, manager_a, anna):
    sign_in("bob")
    page.goto(f"/customers/{anna.pk}/")
    page.click('[data-testid="edit-card"]')
    form = page.locator('[data-testid="edit-form"]')
    form.wait_for()
    form.locator("#id_city").fill("Тула")
    form.locator("#id_phones").fill("12345")
    form.locator('[data-testid="save-card"]').click()
    error = page.locator('[data-error-for="phones"]')
    error.wait_for()
    assert "phone" in error.inner_text().lower()
    anna.refresh_from_db()
    assert anna.city == ""
    form.locator("#id_phones").fill("8 916 123-45-67")
    form.locator('[data-testid="save-card"]').click()
    page.locator('[data-testid="saved"]').wait_for()
    anna.refresh_from_db()
    assert anna.city == "Тула"


def test_store_manager_cannot_open_customer_of_another_store(page, sign_in, manager_a, boris):
    sign_in("bob")
    response = page.goto(f"/customers/{boris.pk}/")
    assert response.status == 404
    assert "Петров" not in page.content()


def test_marketer_sees_masked_phones(page, sign_in, marketer, anna):
    sign_in("maria")
    page.goto("/customers/")
    row = page.locator('[data-testid="customer-row"]').first
    assert "+7 916 ***-**-67" in row.inner_text()
    page.goto(f"/customers/{anna.pk}/")
    phones = page.locator('[data-testid="phones"]').inner_text()
    assert "***" in phones
    assert "123-45-67" not in page.content()


def test_export_works_for_a_permitted_user(page, sign_in, admin_user, anna):
    sign_in("alice")
    page.goto("/customers/")
    with page.expect_download() as info:
        page.click('[data-testid="export-csv"]')
    download = info.value
    text = open(download.path(), encoding="utf-8-sig").read()
    assert "Иванова" in text
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.details["trap"]["full_phone"] in text


def test_export_is_refused_and_audited_for_others(page, sign_in, manager_a, anna):
    sign_in("bob")
    page.goto("/customers/")
    assert page.locator('[data-testid="export-csv"]').count() == 0
    # Export is a POST with CSRF: a plain link (GET) exports nothing.
    url = page.url.split("/customers/")[0] + "/customers/export.csv"
    assert page.request.get(url).status == 405
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        url,
        headers={"X-CSRFToken": token, "Referer": page.url},
    )
    assert response.status == 403
    assert 'data-testid="export-refused"' in response.text()
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT_REFUSED, actor=manager_a).exists()


def test_switch_to_russian_translates_the_page(page, sign_in, manager_a, anna):
    sign_in("bob")
    page.goto("/customers/")
    assert page.locator("h1").inner_text() == "Customers"
    page.click('[data-lang="ru"]')
    page.wait_for_selector('html[lang="ru"]')
    assert page.locator("h1").inner_text() == "Клиенты"
    assert page.locator('[data-nav="today"]').inner_text() == "Сегодня"


def test_too_many_failed_sign_ins_show_a_clear_message(page, manager_a, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        page.goto("/login/")
        page.fill("#id_username", "bob")
        page.fill("#id_password", "wrong password")
        page.click("button[type=submit].btn-primary")
    assert page.locator('[data-testid="lockout"]').is_visible()


def test_new_card_warns_about_a_duplicate(page, sign_in, manager_a, anna, store_a):
    sign_in("bob")
    page.goto("/customers/new/")
    page.fill("#id_surname", "Иванова")
    page.fill("#id_phones", "+7 916 123 45 67")
    page.locator("#id_card_number").click()
    page.locator('[data-testid="duplicate-warning"]').wait_for()
    assert "Иванова" in page.locator('[data-testid="duplicate-warning"]').inner_text()


def test_today_birthdays_of_visible_customers(page, sign_in, manager_a, anna, boris):
    soon = (timezone.localdate() + dt.timedelta(days=2)).replace(year=1990)
    type(anna).objects.filter(pk__in=[anna.pk, boris.pk]).update(birth_date=soon)
    sign_in("bob")
    page.goto("/")
    box = page.locator('[data-testid="birthdays"]').inner_text()
    assert "Иванова" in box
    assert "Петров" not in box


def test_export_button_posts_the_filter_typed_after_the_page_loaded(
    page, sign_in, admin_user, anna, store_a
):
    CustomerFactory(surname="Цыганков", first_name="Фёдор", home_store=store_a)
    sign_in("alice")
    page.goto("/customers/")
    page.fill("#search", "Цыганков")
    page.wait_for_selector('#results:has-text("Цыганков")')
    with page.expect_download() as info:
        page.click('[data-testid="export-csv"]')
    text = open(info.value.path(), encoding="utf-8-sig").read()
    assert "Цыганков" in text
    assert "anna.ivanova@mail.ru" not in text  # the trap's name may be anything, her email not
    assert AuditEvent.objects.get(action=AuditAction.EXPORT).details["filters"] == {
        "query": "Цыганков"
    }
