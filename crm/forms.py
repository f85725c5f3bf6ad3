from django import forms
from django.utils.translation import gettext_lazy as _

from .models import AuditAction, StaffProfile


class DateInput(forms.DateInput):
    input_type = "date"


class AuditFilterForm(forms.Form):
    user = forms.CharField(label=_("User"), required=False, max_length=150)
    action = forms.ChoiceField(
        label=_("Action"), choices=[("", _("Any action")), *AuditAction.choices], required=False
    )
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from customers.forms import bootstrap

        bootstrap(self)


class DigestForm(forms.ModelForm):
    class Meta:
        model = StaffProfile
        fields = ["morning_digest", "digest_language"]
        widgets = {
            "morning_digest": forms.CheckboxInput(attrs={"class": "form-check-input"}),
            "digest_language": forms.Select(attrs={"class": "form-select w-auto"}),
        }
