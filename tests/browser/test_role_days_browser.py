"""Each role's day in a real chromium, in Russian (issue 15), with screenshots under
test-artifacts/screenshots/workday/.

The associate signs a customer up with consent at the till; the manager finds them by "Петр",
by a partial phone and in Latin, logs a call with a follow-up and closes an overdue follow-up
from the card; the marketer builds a segment with a holiday picked from a list, sees its
members, creates a campaign, confirms the audience size and sends it; the admin grants export
to one manager and sees it in the audit log.
"""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message, Segment
from crm.celery import app as celery_app
from crm.models import AuditAction, AuditEvent
from customers.models import ConsentEvent, Contact, Customer
from tests.browser.conftest import PASSWORD, SCREENSHOTS
from tests.campaigns.conftest import customer
from tests.factories import ContactFactory, CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = SCREENSHOTS / "workday"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, username: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].btn-primary")
    page.wait_for_selector('[data-testid="username"]')


def test_associate_signs_a_customer_up_with_consent(ru_page, associate_a, store_a):
    page = ru_page
    sign_in(page, "sasha")
    page.click('[data-nav="new-card"]')
    page.fill("#id_surname", "Егоров")
    page.fill("#id_first_name", "Пётр")
    page.fill("#id_phones", "8 916 529-56-12")
    assert page.locator("#id_home_store").input_value() == str(store_a.pk)
    page.check("#id_consent_sms")
    page.check("#id_consent_email")
    page.select_option("#id_consent_method", "paper")
    shot(page, "associate_signup_form")
    page.click("#new-card button[type=submit]")
    page.wait_for_selector('[data-testid="customer-name"]')
    assert page.locator('[data-channel="sms"]').get_attribute("class").count("btn-success")
    shot(page, "associate_new_card")
    customer = Customer.objects.get(surname="Егоров")
    assert customer.home_store_id == store_a.pk and customer.consent_sms
    assert ConsentEvent.objects.filter(customer=customer, method="paper").count() == 2


def test_manager_finds_logs_a_call_and_closes_an_overdue_follow_up(ru_page, manager_a, store_a):
    page = ru_page
    petr = CustomerFactory(
        surname="Егоров", first_name="Пётр", home_store=store_a, phone_number="+79165295612"
    )
    overdue = ContactFactory(
        customer=petr,
        staff=manager_a,
        next_step="Перезвонить про заказ",
        due_date=timezone.localdate() - dt.timedelta(days=40),
    )
    sign_in(page, "bob")
    for query in ("Петр", "529-56-12", "Egorov Petr"):
        page.goto("/customers/")
        page.fill("#search", query)
        page.wait_for_selector(f'[data-testid="customer-row"] a[href="/customers/{petr.pk}/"]')
    shot(page, "manager_search_latin")

    page.click(f'[data-testid="customer-row"] a[href="/customers/{petr.pk}/"]')
    page.click('[data-testid="add-contact"]')
    form = page.locator('[data-testid="contact-form"]')
    assert form.locator('[name="channel"]').input_value() == "phone"
    assert form.locator('[name="direction"]').input_value() == "out"
    form.locator('[name="topic"]').fill("Звонок о новой коллекции")
    form.locator('[name="next_step"]').fill("Пригласить на примерку")
    form.locator('[name="due_date"]').fill(
        (timezone.localdate() + dt.timedelta(days=2)).isoformat()
    )
    page.click('[data-testid="save-contact"]')
    page.wait_for_selector('[data-testid="contact-item"]:has-text("Звонок о новой коллекции")')

    page.goto(f"/customers/{petr.pk}/")
    item = page.locator('[data-testid="contact-item"]', has_text="Перезвонить про заказ")
    item.locator('[data-testid="followup-done"]').click()
    page.wait_for_selector('[data-testid="contact-item"] [data-testid="followup-closed"]')
    shot(page, "manager_followup_closed")
    assert Contact.objects.get(pk=overdue.pk).done_at is not None


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_marketer_builds_a_holiday_segment_sees_members_and_sends(
    ru_page, marketer, store_a, smtp, eager_celery
):
    from analytics.models import HolidayAffinity

    page = ru_page
    anna = customer(store_a, surname="Иванова", first_name="Анна")
    customer(store_a, surname="Петрова", first_name="Ольга")
    HolidayAffinity.objects.create(customer=anna, holiday="03-08", years=2, last_year=2026)
    sign_in(page, "maria")

    page.goto("/campaigns/segments/new/")
    page.fill("#id_name", "К 8 Марта")
    root = page.locator('[data-role="group"]').first
    root.locator('[data-role="add-condition"]').first.click()
    condition = root.locator('[data-role="condition"]').first
    condition.locator('[data-role="field"]').select_option("holiday_affinity")
    holiday = condition.locator('[data-role="value"]')
    assert "Международный женский день" in holiday.inner_text()
    holiday.select_option("03-08")
    assert condition.locator('[data-role="op"] option').first.inner_text() == "покупает перед"
    page.click('[data-testid="save-segment"]')
    page.wait_for_selector('[data-testid="member-row"]')
    assert page.locator('[data-testid="member-row"]').count() == 1
    shot(page, "marketer_segment_members")
    segment = Segment.objects.get()

    page.goto("/campaigns/new/")
    page.fill("#id_name", "8 Марта")
    page.select_option("#id_segment", str(segment.pk))
    assert not page.locator('[data-field="days_before"]').is_visible()
    page.fill("#id_subject", "С праздником, {{ first_name }}!")
    page.fill("#id_body_html", "<p>{{ first_name }}, ждём вас</p>")
    page.fill("#id_holdout_percent", "0")
    page.click('[data-testid="save-campaign"]')
    page.click('[data-testid="start"]')
    assert page.locator('[data-testid="audience-to-send"]').inner_text() == "1"
    shot(page, "marketer_confirm_send")
    page.click('[data-testid="confirm-start"]')
    page.wait_for_selector('[data-testid="progress-final"]')
    campaign = Campaign.objects.get()
    assert Message.objects.filter(campaign=campaign, state="sent").count() == 1
    assert [m["Subject"] for m in smtp.messages] == ["С праздником, Анна!"]


def test_admin_grants_export_to_one_manager_and_sees_it_in_the_audit_log(
    ru_page, admin_user, manager_a
):
    page = ru_page
    sign_in(page, "alice")
    page.goto(f"/admin/auth/user/{manager_a.pk}/change/")
    options = page.locator("#id_user_permissions_from option")
    export = options.filter(has_text="Может выгружать списки клиентов")
    export.first.click()
    page.click("#id_user_permissions_add")
    page.click('input[name="_save"]')
    page.wait_for_selector(".messagelist, .success")
    manager_a.refresh_from_db()
    assert manager_a.has_perm("customers.export_customers")
    # A permission granted to one person is its own audit action (issue 12).
    assert AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).exists()
    page.goto("/audit/?action=permission_change")
    row = page.locator('[data-testid="audit-row"]').first
    # The audit page names the permission in the reader's language.
    assert "Может выгружать списки клиентов" in row.inner_text()
    shot(page, "admin_audit_export_grant")
