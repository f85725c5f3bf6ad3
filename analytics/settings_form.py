"""The form an admin edits the analytics settings with: thresholds as percentages and the gift
dates as rows (name, day, month). The stored values do not change: shares stay fractions
(0.5 is shown and typed as 50 %) and the holidays stay a list of {"key": "MM-DD", "name"}.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.dates import MONTHS
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .models import AnalyticsSettings

# Blank rows offered under the stored ones, for adding dates (a row without a name is ignored).
BLANK_ROWS = 3
HUNDRED = Decimal(100)


class PercentField(forms.DecimalField):
    """A share typed in percent: the form shows and takes 50, the model stores 0.5."""

    def __init__(self, *, as_float: bool = False, **kwargs) -> None:
        self.as_float = as_float
        kwargs.setdefault("decimal_places", 1)
        kwargs.setdefault("widget", forms.NumberInput(attrs={"step": "0.1"}))
        super().__init__(**kwargs)

    def clean(self, value):
        percent = super().clean(value)
        if percent is None:
            return None
        share = percent / HUNDRED
        return float(share) if self.as_float else share


def as_percent(share) -> Decimal | None:
    """A stored share in percent, without trailing zeros (0.800 -> 80)."""
    if share is None:
        return None
    percent = Decimal(str(share)) * HUNDRED
    return percent.quantize(Decimal(1)) if percent == percent.to_integral() else percent.normalize()


class HolidayRowsWidget(forms.Widget):
    """One row per date: a name, a day and a month picked from lists; blank rows to add more."""

    def value_from_datadict(self, data, files, name):
        names = data.getlist(f"{name}-name") if hasattr(data, "getlist") else []
        days = data.getlist(f"{name}-day") if hasattr(data, "getlist") else []
        months = data.getlist(f"{name}-month") if hasattr(data, "getlist") else []
        width = max(len(names), len(days), len(months))
        rows = []
        for index in range(width):
            rows.append(
                {
                    "name": names[index] if index < len(names) else "",
                    "day": days[index] if index < len(days) else "",
                    "month": months[index] if index < len(months) else "",
                }
            )
        return rows

    def value_omitted_from_data(self, data, files, name):
        # A post without the rows (not made from this page) leaves the stored dates alone;
        # the page always posts them, blank rows included.
        return f"{name}-name" not in data

    def _select(self, name: str, options, selected: str, label) -> str:
        choices = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (value, " selected" if str(value) == selected else "", text)
                for value, text in options
            ),
        )
        return format_html('<select name="{}" aria-label="{}">{}</select>', name, label, choices)

    def render(self, name, value, attrs=None, renderer=None):
        rows = []
        for item in value or []:
            if isinstance(item, dict) and "key" in item:
                key = str(item.get("key", ""))
                month, day = key[:2].lstrip("0"), key[3:].lstrip("0")
                rows.append({"name": item.get("name", ""), "month": month, "day": day})
            elif isinstance(item, dict):
                rows.append({k: str(item.get(k, "")) for k in ("name", "day", "month")})
        rows += [{"name": "", "day": "", "month": ""}] * BLANK_ROWS
        days = [("", "—"), *((str(d), str(d)) for d in range(1, 32))]
        months = [("", "—"), *((str(m), MONTHS[m]) for m in range(1, 13))]
        body = format_html_join(
            "",
            '<tr><td><input type="text" name="{}" value="{}" maxlength="100" aria-label="{}"></td>'
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{name}-name",
                    row["name"],
                    _("name"),
                    self._select(f"{name}-day", days, str(row["day"]), _("day")),
                    self._select(f"{name}-month", months, str(row["month"]), _("month")),
                )
                for row in rows
            ),
        )
        return format_html(
            '<table class="holiday-rows" data-testid="holiday-rows"><thead><tr>'
            "<th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("name"),
            _("day"),
            _("month"),
            body,
        )


class HolidayRowsField(forms.Field):
    """The gift dates as rows; cleans to the stored list of {"key": "MM-DD", "name"}."""

    widget = HolidayRowsWidget

    def to_python(self, value):
        if not value:
            return []
        if not isinstance(value, list):
            raise ValidationError(_("Holidays must be a list."), code="invalid")
        holidays, problems = [], []
        for number, row in enumerate(value, start=1):
            if isinstance(row, dict) and "key" in row:  # a stored value (the initial data)
                holidays.append(row)
                continue
            name = str(row.get("name", "")).strip()
            day, month = str(row.get("day", "")).strip(), str(row.get("month", "")).strip()
            if not (name or day or month):
                continue  # a blank row
            if not name or not day or not month:
                problems.append(
                    _("Row %(n)s: give the holiday's name, day and month.") % {"n": number}
                )
                continue
            try:
                # A leap year: 29 February is a valid date to celebrate.
                date = dt.date(2000, int(month), int(day))
            except ValueError:
                problems.append(_("Row %(n)s: there is no such date.") % {"n": number})
                continue
            holidays.append({"key": f"{date:%m-%d}", "name": name})
        if problems:
            raise ValidationError(problems, code="invalid")
        return holidays


PERCENT_FIELDS = {
    # name: (smallest, largest) in percent, as the model's validators allow in shares
    "vip_revenue_share": (Decimal(1), Decimal(100)),
    "vip_cap": (Decimal(0), Decimal(100)),
    "d_p_alive_threshold": (Decimal(0), Decimal(100)),
    "annual_discount_rate": (Decimal(0), None),
    "clv_max_backtest_error": (Decimal(1), Decimal(500)),
}


class AnalyticsSettingsForm(forms.ModelForm):
    holidays = HolidayRowsField(label=_("Holidays"), required=False)

    class Meta:
        model = AnalyticsSettings
        fields = [
            "window_days",
            "vip_revenue_share",
            "vip_cap",
            "b_growth_ratio",
            "b_new_customer_days",
            "b_second_purchase_days",
            "d_p_alive_threshold",
            "clv_horizon_months",
            "annual_discount_rate",
            "clv_backtest_weeks",
            "clv_max_backtest_error",
            "clv_min_repeat_buyers",
            "holidays",
            "holiday_lookback_days",
            "holiday_min_years",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        meta = AnalyticsSettings._meta
        for name, (low, high) in PERCENT_FIELDS.items():
            if name not in self.fields:
                continue
            model_field = meta.get_field(name)
            self.fields[name] = PercentField(
                label=format_lazy("{}, %", model_field.verbose_name),
                min_value=low,
                max_value=high,
                as_float=isinstance(model_field, models.FloatField),
            )
            self.initial[name] = as_percent(getattr(self.instance, name))
        if "clv_max_backtest_error" in self.fields:
            self.fields["clv_max_backtest_error"].help_text = _(
                "25 accepts a total prediction 25% off what happened."
            )
        self.initial["holidays"] = self.instance.holidays
