"""In a real chromium: a manager records a paper consent at sign-up; an admin answers a
subject-access request and erases the customer on withdrawal."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from customers.models import Customer, ProcessingConsent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_paper_consent_at_signup_then_subject_access_and_erasure(
    page, sign_in, manager_a, admin_user, store_a, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    scan = tmp_path / "consent.pdf"
    scan.write_bytes(b"%PDF-1.4 signed consent")

    sign_in("bob")
    page.goto("/customers/new/")
    page.fill("#id_surname", "Бумажкина")
    page.fill("#id_first_name", "Вера")
    page.fill("#id_phones", "+7 916 700 11 22")
    page.select_option("#id_home_store", str(store_a.pk))
    fieldset = page.locator('[data-testid="processing-consent-fieldset"]')
    fieldset.locator("#id_pc-method").select_option("paper")
    fieldset.locator("#id_pc-paper_number").fill("П-042")
    fieldset.locator("#id_pc-scan").set_input_files(str(scan))
    page.click('[data-testid="create-form"] button[type=submit]')
    page.locator('[data-testid="processing-state"][data-state="valid"]').wait_for()
    customer = Customer.objects.get(surname="Бумажкина")
    consent = ProcessingConsent.objects.get(customer=customer)
    assert (consent.method, consent.paper_number, consent.taken_by) == ("paper", "П-042", manager_a)
    assert consent.scan.read() == b"%PDF-1.4 signed consent"

    page.context.clear_cookies()
    sign_in("alice")
    page.goto(customer.get_absolute_url())
    with page.expect_download() as download_info:
        page.click('[data-testid="subject-access-download"]')
    path = download_info.value.path()
    book = load_workbook(io.BytesIO(open(path, "rb").read()), read_only=True)
    values = {
        str(v)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for v in row
        if v
    }
    assert "Бумажкина" in values and "+79167001122" in values and "П-042" in values

    page.goto(customer.get_absolute_url())
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('[data-testid="processing-withdraw"]')
    page.locator('[data-testid="processing-state"][data-state="withdrawn"]').wait_for()
    assert page.locator('[data-testid="erasure-due"]').is_visible()

    page.click('[data-testid="erase-link"]')
    page.select_option("#id_basis", "withdrawal")
    page.check("#id_confirm")
    page.click('[data-testid="erase-confirm"]')
    page.locator('[data-testid="processing-state"][data-state="erased"]').wait_for()
    assert "Бумажкина" not in page.content()
    customer.refresh_from_db()
    assert customer.erased_at is not None and customer.surname == ""
