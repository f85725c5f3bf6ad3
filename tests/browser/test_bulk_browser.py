"""The list's bulk bar in a real chromium, in Russian: a marketer ticks two rows and adds them
to a static segment (screenshots under test-artifacts/screenshots/workday/)."""

import pytest
from django.utils import timezone

from campaigns.models import Segment, SegmentMember
from tests.browser.conftest import PASSWORD, SCREENSHOTS
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = SCREENSHOTS / "workday"


def test_marketer_ticks_rows_and_adds_them_to_a_static_segment(ru_page, marketer, store_a):
    page = ru_page
    egorov = CustomerFactory(surname="Егоров", first_name="Пётр", home_store=store_a)
    egorova = CustomerFactory(surname="Егорова", first_name="Анна", home_store=store_a)
    CustomerFactory(surname="Смирнов", first_name="Олег", home_store=store_a)
    segment = Segment.objects.create(name="Гости открытия", frozen_at=timezone.now())

    page.goto("/login/")
    page.fill("#id_username", "maria")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].btn-primary")
    page.wait_for_selector('[data-testid="username"]')
    page.goto("/customers/")
    page.check(f'[data-testid="bulk-pick"][value="{egorov.pk}"]')
    page.check(f'[data-testid="bulk-pick"][value="{egorova.pk}"]')
    assert page.locator('[data-testid="bulk-count"]').inner_text().endswith("2")
    # A marketer's only action here; its values are the static segments and "new".
    page.select_option('[data-testid="bulk-action"]', "add_to_segment")
    page.select_option('[data-testid="bulk-value"]', str(segment.pk))
    assert page.locator('[data-testid="bulk-name"]').is_hidden()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "marketer_bulk_selected.png"), full_page=True)
    page.click('[data-testid="bulk-apply"]')
    page.wait_for_selector(".alert-success")
    page.screenshot(path=str(SHOTS / "marketer_bulk_added.png"), full_page=True)
    members = set(
        SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )
    assert members == {egorov.pk, egorova.pk}
