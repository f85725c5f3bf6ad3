from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _


class AdjustForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Points (negative to take away)"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("-1000000"),
        max_value=Decimal("1000000"),
    )
    reason = forms.CharField(label=_("Reason"), max_length=300)
