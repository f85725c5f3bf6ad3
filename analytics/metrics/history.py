"""Which customers' history-only aggregates a nightly run recomputes (`History`), and the
holiday keys they depend on.

Inputs: the run's `Params` and the previous full run's `ClassThresholds` (its history
watermark); output: a `History`, or None for "everyone", which `base.build_base` turns into
the `am_dirty` table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.utils import timezone

from crm import calendar

from ..models import AnalyticsSettings, ClassThresholds
from .session import Params, _fetchall

log = logging.getLogger(__name__)

# Receipts written by transactions that were still open when the previous run began.
HISTORY_OVERLAP = dt.timedelta(hours=1)


@dataclass
class History:
    """What a nightly run may reuse of the previous full run's history-only aggregates.

    Favourite categories, holiday affinity and purchase days (`PurchaseDays`) depend on nothing
    but a customer's own receipts,
    returns and lines (plus the holiday settings and category names, which the signature
    covers). A customer is *dirty*, and gets them recomputed from the lines, when a receipt or
    return of theirs arrived since the previous run began (less an hour's overlap for
    transactions still open then), when a purchase became visible (purchased after the
    previous run's as-of time), or when a receipt of theirs lies in the run-up to a holiday
    that has passed since. Every other customer keeps the previous values, which a run from
    scratch would compute identically (a test compares the two on changed data).
    """

    received_since: dt.datetime
    visible_after: dt.datetime
    closed_windows: list[tuple[dt.datetime, dt.datetime]]


def history_signature(params: Params) -> str:
    """Everything besides the receipts that favourites, holiday affinity and purchase days
    depend on (purchase days: the stores' time zones and currencies)."""
    conf = params.settings
    year = timezone.localtime(params.as_of).year
    categories = _fetchall(
        "SELECT coalesce(md5(string_agg(id || ':' || name, ',' ORDER BY id)), '') "
        "FROM sales_category"
    )[0][0]
    stores = _fetchall(
        "SELECT coalesce(md5(string_agg(id || ':' || timezone || ':' || currency, ',' "
        "ORDER BY id)), '') FROM sales_store"
    )[0][0]
    parts = [
        ",".join(sorted(holiday_keys(conf, year))),
        str(year),
        str(conf.holiday_lookback_days),
        str(conf.holiday_min_years),
        django_settings.TIME_ZONE,
        categories,
        stores,
        django_settings.CLIENTELE_DEFAULT_CURRENCY,
        # The version of the stored purchase days: a new one rebuilds them for everyone.
        "purchase-days-1",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def plan_history(
    params: Params, previous: ClassThresholds | None, signature: str
) -> History | None:
    """The `History` a nightly run may use, or None when everything must be recomputed."""
    if (
        previous is None
        or previous.history_started_at is None
        or previous.history_as_of is None
        or previous.history_signature != signature
        or previous.history_as_of > params.as_of
    ):
        return None
    conf = params.settings
    since = timezone.localtime(previous.history_as_of).date()
    today = timezone.localtime(params.as_of).date()
    tz = timezone.get_current_timezone()
    windows = []
    for key in holiday_keys(conf, today.year):
        for year in range(since.year, today.year + 1):
            try:
                day = dt.date(year, int(key[:2]), int(key[3:]))
            except ValueError:
                continue  # 29 February of a common year
            if since < day <= today:
                ends = dt.datetime.combine(day, dt.time(), tz)
                windows.append((ends - dt.timedelta(days=conf.holiday_lookback_days), ends))
    return History(
        received_since=previous.history_started_at - HISTORY_OVERLAP,
        visible_after=previous.history_as_of,
        closed_windows=windows,
    )


def holiday_keys(conf: AnalyticsSettings, year: int) -> set[str]:
    """ "MM-DD" keys the campaigns can target: the chain's calendar (`crm.calendar`) with the
    admin's own gift dates from the settings."""
    return calendar.holiday_keys(year, [item.get("key") for item in conf.holidays or []])
