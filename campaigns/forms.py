from __future__ import annotations

import json
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign
from campaigns.services.segments import validate_rules
from crm.calendar import holiday_choices


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


# Which campaign kinds and channels each field belongs to; the form shows only the fields of
# the chosen kind and channel (campaigns/static/campaigns/campaign_form.js).
FIELD_KINDS = {
    "scheduled_at": "one_off",
    "days_before": "birthday holiday",
    "holiday_key": "holiday",
    "chain_date": "holiday",
    "affinity_only": "holiday",
}
FIELD_CHANNELS = {"subject": "email", "body_html": "email", "body_text": "sms messenger"}


class CampaignForm(forms.ModelForm):
    holiday_key = forms.ChoiceField(label=_("Holiday"), required=False)
    holdout_percent = forms.DecimalField(
        label=_("Holdout (percent of the audience)"),
        min_value=0,
        max_value=90,
        decimal_places=1,
        initial=10,
        help_text=_(
            "This share of the audience gets nothing, so the results can show what the "
            "campaign changed. Under a few hundred people it measures nothing."
        ),
    )

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
            "attribution_days",
            "is_marketing",
        ]
        widgets = {
            "scheduled_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "body_html": forms.Textarea(attrs={"rows": 10, "data-role": "html-editor"}),
            "body_text": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from campaigns.channels import configured_channels
        from campaigns.models import MessageChannel

        self.fields["holiday_key"].choices = [("", "—"), *holiday_choices()]
        if self.instance.pk:
            percent = format(self.instance.holdout_share * 100, "f")
            self.initial.setdefault("holdout_percent", percent.rstrip("0").rstrip("."))
        # Only channels that can actually send (an already chosen one stays, to be changed).
        usable = set(configured_channels(MessageChannel.values)) | {self.instance.channel}
        self.fields["channel"].choices = [
            (code, label) for code, label in MessageChannel.choices if code in usable
        ]
        self.unconfigured_channels = [
            label for code, label in MessageChannel.choices if code not in usable
        ]
        for name, field in self.fields.items():
            widget = field.widget
            if name in FIELD_KINDS:
                field.show_for_kinds = FIELD_KINDS[name]
            if name in FIELD_CHANNELS:
                field.show_for_channels = FIELD_CHANNELS[name]
            if isinstance(widget, forms.CheckboxInput):
                widget.attrs.setdefault("class", "form-check-input")
            elif isinstance(widget, forms.Select):
                widget.attrs.setdefault("class", "form-select")
            else:
                widget.attrs.setdefault("class", "form-control")

    def save(self, commit=True):
        self.instance.holdout_share = (self.cleaned_data["holdout_percent"] / 100).quantize(
            Decimal("0.001")
        )
        return super().save(commit=commit)


class PreviewForm(forms.Form):
    customer = forms.IntegerField(
        label=_("Customer"), min_value=1, error_messages={"required": _("Pick a customer.")}
    )


class TestSendForm(forms.Form):
    customer = forms.IntegerField(
        label=_("Customer"), min_value=1, error_messages={"required": _("Pick a customer.")}
    )
    to = forms.ChoiceField(label=_("Send to"))

    def __init__(self, *args, addresses: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        # Only the user's own and the chain's test addresses: never a free address.
        self.fields["to"].choices = [(a, a) for a in addresses]
