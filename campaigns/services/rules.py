"""Rules that hold at send time: consent, do-not-contact, the frequency cap, quiet hours.

Settings (crm/settings.py, from the environment), chosen over a settings row because they are
chain-wide policy that changes rarely and must be identical in every worker:

- ``CLIENTELE_CAP_MESSAGES`` / ``CLIENTELE_CAP_DAYS``: at most K marketing messages per customer
  in any rolling D days, across campaigns (messages being sent count too); transactional
  campaigns (``Campaign.is_marketing = False``) neither count nor are capped.
- ``CLIENTELE_QUIET_HOURS``: ``"21-9"`` means no message from 21:00 to 09:00 in the time zone of
  the customer's home store (the chain's TIME_ZONE without one); a message due in quiet hours is
  deferred to their end, never dropped.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings

ADDRESS_FIELD = {"email": "email", "sms": "phone", "messenger": "phone"}


def quiet_hours() -> tuple[int, int] | None:
    raw = (settings.CLIENTELE_QUIET_HOURS or "").strip()
    if not raw:
        return None
    start, _, end = raw.partition("-")
    start_h, end_h = int(start) % 24, int(end) % 24
    return None if start_h == end_h else (start_h, end_h)


def quiet_until(now: dt.datetime, tz_name: str) -> dt.datetime | None:
    """When quiet hours end if `now` falls in them in `tz_name`, else None."""
    hours = quiet_hours()
    if hours is None:
        return None
    start, end = hours
    tz = zoneinfo.ZoneInfo(tz_name or settings.TIME_ZONE)
    local = now.astimezone(tz)
    in_quiet = (
        (start <= local.hour or local.hour < end) if start > end else start <= local.hour < end
    )
    if not in_quiet:
        return None
    day = local.date() if local.hour < end else local.date() + dt.timedelta(days=1)
    # Wall-clock end in the store's zone; fold=0 picks the first occurrence on a DST change.
    return dt.datetime.combine(day, dt.time(end), tzinfo=tz).astimezone(dt.UTC)


def cap() -> tuple[int, int]:
    return settings.CLIENTELE_CAP_MESSAGES, settings.CLIENTELE_CAP_DAYS
