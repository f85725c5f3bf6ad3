"""In a real chromium: a marketer builds a segment with a nested condition, sees the live count,
creates a campaign, previews it, sends it, and sees progress and results.

Sending runs the real send task inline (Celery's eager mode) against the real SMTP server; the
real worker process is exercised in test_worker_kill.py.
"""

import re

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message, Segment
from crm.celery import app as celery_app
from tests.browser.conftest import SCREENSHOTS, browser, page, sign_in  # noqa: F401 - fixtures
from tests.campaigns.conftest import customer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_marketer_builds_segment_creates_previews_sends_and_sees_results(
    page,  # noqa: F811 - the fixture imported above
    sign_in,  # noqa: F811
    smtp,
    eager_celery,
    marketer,
    store_a,
    store_b,
):
    anna = customer(store_a, first_name="Анна", patronymic="Сергеевна", gender="f")
    customer(store_a, first_name="Ольга", gender="f")
    customer(store_a, first_name="Иван", gender="m")
    customer(store_b, first_name="Вера", gender="f")
    sign_in("maria")

    page.goto("/campaigns/segments/new/")
    page.fill("#id_name", "Женщины Тверской")
    root = page.locator('[data-role="group"]').first
    # Root: gender in [f]; nested OR group: home store in [store A].
    root.locator('[data-role="add-condition"]').first.click()
    page.locator('[data-role="condition"] [data-role="value"]').first.select_option(["f"])
    root.locator('[data-role="add-group"]').first.click()
    nested = page.locator('[data-role="group"] [data-role="group"]').first
    nested.locator('[data-role="add-condition"]').click()
    condition = nested.locator('[data-role="condition"]').first
    condition.locator('[data-role="field"]').select_option("home_store")
    nested.locator('[data-role="condition"] [data-role="value"]').select_option(str(store_a.pk))
    page.wait_for_selector('[data-testid="live-count"]:has-text("2 customers")')
    page.click('[data-testid="save-segment"]')
    page.wait_for_selector("text=Segment saved.")
    segment = Segment.objects.get()
    assert segment.rules["rules"][1]["op"] == "or"
    page.wait_for_selector('[data-testid="live-count"]:has-text("2 customers")')

    page.goto("/campaigns/new/")
    page.fill("#id_name", "Весна")
    page.select_option("#id_segment", str(segment.pk))
    page.fill("#id_subject", "Весна, {{ first_name }}!")
    page.fill("#id_body_html", "<p>{{ first_name }} {{ patronymic }}, ждём в {{ store }}</p>")
    page.fill("#id_holdout_percent", "0")
    page.click('[data-testid="save-campaign"]')
    page.wait_for_selector('[data-testid="status"]')
    campaign = Campaign.objects.get()

    page.fill('[data-testid="picker-search"]', anna.surname)
    page.click(f'[data-role="pick"][data-customer="{anna.pk}"]')
    page.click('[data-testid="preview"]')
    page.wait_for_selector('[data-testid="preview-body"]:has-text("Весна, Анна!")')

    page.click('[data-testid="start"]')
    assert page.locator('[data-testid="audience-to-send"]').inner_text() == "2"
    page.click('[data-testid="confirm-start"]')
    page.wait_for_selector('[data-testid="progress-final"]')
    assert page.locator('[data-testid="total"]').inner_text() == "2"
    assert page.locator('[data-state="sent"]').inner_text() == "2"
    assert sorted(m["Subject"] for m in smtp.messages) == ["Весна, Анна!", "Весна, Ольга!"]

    page.click('[data-testid="results-link"]')
    page.wait_for_selector('[data-testid="results"]')
    assert page.locator('[data-testid="delivered"]').inner_text() == "2"
    assert re.search(r"Response rate", page.content())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "campaign_results.png"), full_page=True)
    assert Message.objects.filter(campaign=campaign, state="sent").count() == 2
    assert campaign.created_at <= timezone.now()
