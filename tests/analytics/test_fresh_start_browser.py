"""A fresh start, as `make run` gives it: the demo chain loads, the first recompute runs at once
(seed_demo), and a marketer opening the dashboard sees figures, not blanks."""

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.browser.conftest import (  # noqa: F401 - the Playwright fixtures
    SCREENSHOTS,
    browser,
    page,
    sign_in,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_marketer_sees_classes_the_fit_the_backtest_and_a_forecast_on_a_fresh_start(
    page,  # noqa: F811
    sign_in,  # noqa: F811
    marketer,
):
    call_command(
        "seed_demo",
        "--customers",
        "800",
        "--stores",
        "2",
        "--today",
        timezone.localdate().isoformat(),
        "--no-users",
        "--quiet",
    )
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in("maria")
    page.goto("/analytics/")
    page.wait_for_selector("body[data-charts-ready='1']")

    counts = [
        int(text.replace("\u00a0", "").replace(",", ""))
        for text in page.locator("[data-testid=classes] tbody td:nth-child(2)").all_inner_texts()
    ]
    assert sum(counts) > 500 and sum(1 for c in counts if c) >= 4
    assert "passed its checks" in page.locator("[data-testid=model-state]").inner_text()
    fit = page.locator("[data-testid=fit]").inner_text()
    assert "BG/NBD" in fit and "Gamma-Gamma" in fit and "log-likelihood" in fit
    assert "error" in page.locator("[data-testid=backtest-total]").inner_text()
    page.wait_for_selector("#chart-backtest[data-drawn='1']")
    assert page.locator("#chart-backtest").bounding_box()["height"] > 50
    forecast = page.evaluate("JSON.parse(document.getElementById('data-forecast').textContent)")
    assert len(forecast) >= 3 and all(f["low"] <= f["forecast"] <= f["high"] for f in forecast)
    assert page.locator("#chart-sales").bounding_box()["height"] > 50
    assert errors == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "analytics-fresh-start-marketer.png"), full_page=True)
