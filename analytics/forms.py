"""The dashboard's period and store picker."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.inputs import validate_sane_date
from crm.models import Store

from . import selectors


class DashboardFilterForm(forms.Form):
    date_from = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[validate_sane_date],
    )
    date_to = forms.DateField(
        label=_("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[validate_sane_date],
    )
    store = forms.ModelChoiceField(
        label=_("Store"),
        queryset=Store.objects.none(),
        required=False,
        empty_label=_("All my stores"),
    )

    currency = forms.ChoiceField(label=_("Currency"), required=False, choices=())

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        currencies = selectors.chain_currencies()
        if len(currencies) > 1:
            self.fields["currency"].choices = [(c, c) for c in currencies]
        else:
            del self.fields["currency"]
        allowed = selectors.dashboard_store_ids(user)
        stores = Store.objects.order_by("name")
        self.fields["store"].queryset = stores if allowed is None else stores.filter(id__in=allowed)

    def clean(self):
        data = super().clean()
        default = selectors.default_period()
        start = data.get("date_from") or default.start
        end = data.get("date_to") or timezone.localdate()
        if start > end:
            self.add_error("date_from", _("Must not be after the end of the period."))
        elif (end - start).days > 3660:
            self.add_error("date_from", _("A period is at most ten years."))
        else:
            data["period"] = selectors.Period(start, end)
        return data
