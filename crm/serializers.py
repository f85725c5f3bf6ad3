"""Serializer plumbing every app's API shares: strict input, aware timestamps, id range.

Below every app (crm imports none); sales' and customers' serializers build on these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.inputs import echo_safe

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE_SLACK = dt.timedelta(days=1)
MAX_ID = 2**63 - 1


class StrictSerializer(serializers.Serializer):
    """A serializer that rejects fields it does not know, so a typo never passes silently."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError(
                    {echo_safe(str(key)): [_("Unknown field.")] for key in unknown[:20]}
                )
        return super().to_internal_value(data)


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an explicit offset, between 2000 and one day from now."""

    default_error_messages = {
        "naive": _("Give the time with its UTC offset, e.g. 2025-03-08T14:05:00+03:00."),
        "too_early": _("Dates before 2000 are not accepted."),
        "too_late": _("This is more than a day in the future."),
    }

    def to_internal_value(self, value):
        if isinstance(value, str) and len(value) > 40:
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss[.uuuuuu]]+HH:MM")
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        elif not isinstance(value, str):
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss[.uuuuuu]]+HH:MM")
        result = super().to_internal_value(value)
        if result < EARLIEST:
            self.fail("too_early")
        if result > timezone.now() + FUTURE_SLACK:
            self.fail("too_late")
        return result
