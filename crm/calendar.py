"""The chain's calendar: the country's public holidays, the chain's own dates (`ChainDate`) and
the gift dates an app adds, as "MM-DD" keys that match in every year.

One home, below the apps that read it: analytics (holiday affinity: who buys before which
holiday) and campaigns (holiday triggers and the holiday pickers). The public holidays come
from the `holidays` package for CLIENTELE_DEFAULT_REGION.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

import holidays as holidays_lib
from django.conf import settings
from django.utils import timezone, translation

log = logging.getLogger(__name__)


def is_month_day(key: str) -> bool:
    """Whether `key` is "MM-DD" of a real date (02-29 counts: it exists in leap years)."""
    try:
        dt.date(2000, int(key[:2]), int(key[3:]))  # a leap year, so 02-29 parses
    except (ValueError, IndexError, TypeError):
        return False
    return len(key) == 5 and key[2] == "-"


def public_holidays(year: int, *, language: str | None = None, observed: bool = True):
    """The country's public holidays of `year`: a `holidays` calendar, day -> name."""
    return holidays_lib.country_holidays(
        settings.CLIENTELE_DEFAULT_REGION, years=year, observed=observed, language=language
    )


def holiday_choices(year: int | None = None) -> list[tuple[str, str]]:
    """("MM-DD", "DD.MM name") of the country's holidays, named in the reader's language.

    Days off moved from a weekend ("Day off (substituted from ...)") are not occasions to greet
    anyone, so they are not offered.
    """
    year = year or timezone.localdate().year
    english = public_holidays(year, language="en_US")
    language = (translation.get_language() or "en").split("-")[0]
    try:
        local = public_holidays(year, language=language)
    except NotImplementedError:
        local = english
    if language not in (local.supported_languages or ()):
        local = english
    choices = []
    for day, name in sorted(local.items()):
        if english.get(day, "").startswith("Day off"):
            continue
        choices.append((f"{day:%m-%d}", f"{day:%d.%m} {name}"))
    return choices


def chain_date_keys() -> set[str]:
    """ "MM-DD" of every date the chain celebrates itself (`crm.models.ChainDate`)."""
    from crm.models import ChainDate

    return {f"{m:02d}-{d:02d}" for m, d in ChainDate.objects.values_list("month", "day")}


def holiday_keys(year: int, extra: Iterable[str] = ()) -> set[str]:
    """ "MM-DD" keys of the holidays of `year` a customer may buy for: the country's public
    holidays (as the campaigns list them), the `extra` gift dates a caller keeps (analytics'
    settings) and the chain's own dates. Keys that are not MM-DD are left out (and logged)."""
    calendar = public_holidays(year, language="en_US", observed=False)
    # Days off moved from a weekend fall on other dates every year: no habit can form on them.
    keys = {f"{day:%m-%d}" for day, name in calendar.items() if not name.startswith("Day off")}
    keys |= {str(key) for key in extra if key}
    keys |= chain_date_keys()
    valid = {key for key in keys if is_month_day(key)}
    for key in sorted(keys - valid):
        log.warning("ignoring holiday key %r: not MM-DD", key)
    return valid
