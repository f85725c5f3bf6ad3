"""The admin moves a base in and cleans it, in a real chromium: upload an XLSX, adjust the
mapping, read the dry run, run it, watch the progress bar, then merge a duplicate pair."""

from __future__ import annotations

import datetime as dt

import pytest

from crm.celery import app as celery_app
from customers.duplicates.finder import duplicates_find
from customers.models import Customer
from tests.browser.conftest import browser, page, sign_in  # noqa: F401 - fixtures
from tests.factories import CustomerFactory

from .conftest import make_xlsx

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def eager_celery():
    # The task body runs in the web request (the worker path is tested in test_worker_kill).
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_admin_imports_an_xlsx_and_merges_a_duplicate(
    page,  # noqa: F811 - the fixture imported above
    sign_in,  # noqa: F811
    admin_user,
    store_a,
    eager_celery,
    tmp_path,
    settings,
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    existing = CustomerFactory(
        surname="Орлова",
        first_name="Вера",
        email="",
        birth_date=dt.date(1990, 1, 1),
        home_store=store_a,
        phone_number="+79160000001",
        card_number=None,
    )
    path = tmp_path / "база.xlsx"
    path.write_bytes(
        make_xlsx(
            [
                ["ФИО", "Телефон", "Дата рождения", "E-mail", "Пометка"],
                [
                    "Кузнецова Анна Сергеевна",
                    "8 (916) 111-22-01",
                    "12.04.1990",
                    "anna@example.ru",
                    "VIP",
                ],
                ["Орлова Вера Ивановна", "8 916 111-22-03", dt.date(1990, 1, 1), "", "новая"],
                ["Зайцева Ольга", "8-916-111-22-05", "", "olga@example", ""],
            ]
        )
    )
    sign_in(admin_user.username)
    page.click('[data-nav="import"]')
    page.select_option("#id_kind", "customers")
    page.set_input_files("#id_file", str(path))
    page.click('[data-testid="upload-form"] button[type=submit]')
    page.wait_for_selector('[data-testid="mapping-form"]')
    assert page.locator('select[name="col_4"]').input_value() == ""  # "Пометка" is unknown
    page.select_option('select[name="col_4"]', "notes")
    page.click('[data-testid="dry-run"]')
    page.wait_for_selector('[data-testid="totals"]')
    assert page.locator('[data-outcome="created"]').first.inner_text() == "2"
    assert page.locator('[data-outcome="error"]').first.inner_text() == "1"
    error_row = page.locator('[data-testid="report-row"][data-outcome="error"]')
    assert "Email" in error_row.inner_text()
    assert Customer.objects.count() == 1, "the dry run wrote nothing"
    page.click('[data-testid="run"]')
    page.wait_for_selector('[data-testid="import-status"]:has-text("Imported")')
    progress = page.locator('[data-testid="import-progress"] .progress-bar')
    assert progress.inner_text() == "100%"
    assert Customer.objects.get(surname="Кузнецова").notes == "VIP"

    duplicates_find()  # what the nightly job does
    page.click('[data-nav="duplicates"]')
    row = page.locator('[data-testid="pair-row"]')
    assert row.count() == 1 and "Орлова" in row.inner_text()
    row.locator('[data-testid="merge-link"]').click()
    page.wait_for_selector('[data-testid="merge-form"]')
    page.click('[data-testid="merge-submit"]')
    page.wait_for_url(f"**/customers/{existing.pk}/")
    assert Customer.objects.filter(surname="Орлова").count() == 1
    survivor = Customer.objects.get(surname="Орлова")
    assert survivor.pk == existing.pk
    assert set(survivor.phones.values_list("number", flat=True)) == {"+79160000001", "+79161112203"}


def test_choosing_the_card_that_stays_also_chooses_its_loyalty_card_number(
    page,  # noqa: F811
    sign_in,  # noqa: F811
    admin_user,
    store_a,
):
    older = CustomerFactory(home_store=store_a, card_number="3001", phone_number="+79160000011")
    newer = CustomerFactory(home_store=store_a, card_number="3002", phone_number="+79160000012")
    sign_in(admin_user.username)
    page.goto(f"/customers/merge/?ids={older.pk},{newer.pk}")
    assert page.locator(f"#f_card_number_{older.pk}").is_checked()
    page.check(f"#survivor-{newer.pk}")
    assert page.locator(f"#f_card_number_{newer.pk}").is_checked()
    page.click('[data-testid="merge-submit"]')
    page.wait_for_url(f"**/customers/{newer.pk}/")
    assert Customer.objects.get(pk=newer.pk).card_number == "3002"
    assert not Customer.objects.filter(pk=older.pk).exists()
