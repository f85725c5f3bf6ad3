from django import forms
from django.utils.translation import gettext_lazy as _

from .models import AuditAction, StaffProfile


def bootstrap(form: forms.BaseForm) -> None:
    """Give every widget of `form` Bootstrap's class for its kind."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            css = "form-check-input"
        elif isinstance(widget, forms.Select | forms.SelectMultiple):
            css = "form-select"
        else:
            css = "form-control"
        widget.attrs.setdefault("class", css)


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
        bootstrap(self)


class DigestForm(forms.ModelForm):
    class Meta:
        model = StaffProfile
        fields = ["morning_digest", "digest_language"]
        widgets = {
            "morning_digest": forms.CheckboxInput(attrs={"class": "form-check-input"}),
            "digest_language": forms.Select(attrs={"class": "form-select w-auto"}),
        }
