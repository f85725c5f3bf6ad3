from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign
from campaigns.services.segments import validate_rules
from campaigns.services.triggers import holiday_choices


class RulesField(forms.CharField):
    """A rule tree posted as JSON by the segment builder."""

    widget = forms.HiddenInput

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return {}
        try:
            tree = json.loads(value)
        except (ValueError, RecursionError) as error:  # RecursionError: nesting too deep
            raise forms.ValidationError(_("The rules are not valid JSON.")) from error
        errors = validate_rules(tree)
        if errors:
            raise forms.ValidationError(errors)
        return tree

    def prepare_value(self, value):
        return value if isinstance(value, str) else json.dumps(value or {}, ensure_ascii=False)


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    rules = RulesField(required=False)


class CountForm(forms.Form):
    rules = RulesField(required=False)


class CampaignForm(forms.ModelForm):
    holiday_key = forms.ChoiceField(label=_("Holiday"), required=False)

    class Meta:
        model = Campaign
        fields = [
            "name",
            "kind",
            "channel",
            "segment",
            "scheduled_at",
            "days_before",
            "holiday_key",
            "chain_date",
            "affinity_only",
            "subject",
            "body_html",
            "body_text",
            "holdout_share",
            "attribution_days",
            "is_marketing",
        ]
        widgets = {
            "scheduled_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "body_html": forms.Textarea(attrs={"rows": 6}),
            "body_text": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["holiday_key"].choices = [("", "—"), *holiday_choices()]
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                widget.attrs.setdefault("class", "form-check-input")
            elif isinstance(widget, forms.Select):
                widget.attrs.setdefault("class", "form-select")
            else:
                widget.attrs.setdefault("class", "form-control")


class PreviewForm(forms.Form):
    customer = forms.IntegerField(label=_("Customer id"), min_value=1)


class TestSendForm(forms.Form):
    customer = forms.IntegerField(label=_("Customer id"), min_value=1)
    to = forms.ChoiceField(label=_("Send to"))

    def __init__(self, *args, addresses: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        # Only the user's own and the chain's test addresses: never a free address.
        self.fields["to"].choices = [(a, a) for a in addresses]
