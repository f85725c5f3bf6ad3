"""Forms of the personal-data pages; they parse input, `customers.privacy.services` decides."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ..forms import DateInput, bootstrap
from .models import ConsentMethod
from .services import ErasureBasis

# The ways staff take consent at sign-up; import and API have their own doors.
STAFF_METHODS = [
    (ConsentMethod.PAPER, ConsentMethod.PAPER.label),
    (ConsentMethod.TILL_SCREEN, ConsentMethod.TILL_SCREEN.label),
    (ConsentMethod.WEB_FORM, ConsentMethod.WEB_FORM.label),
]


class ProcessingConsentForm(forms.Form):
    """Consent to processing as its own fieldset (apart from the mailing consents)."""

    method = forms.ChoiceField(label=_("Consent to processing of personal data"), required=False)
    paper_number = forms.CharField(label=_("Paper form number"), max_length=40, required=False)
    scan = forms.FileField(label=_("Scan of the signed form"), required=False)

    def __init__(self, *args, required: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        empty = [] if required else [("", _("Not taken now"))]
        self.fields["method"].choices = [*empty, *STAFF_METHODS]
        self.fields["method"].required = required
        if self.fields["scan"].widget.attrs is not None:
            self.fields["scan"].widget.attrs["accept"] = "image/*,application/pdf"
        bootstrap(self)

    def clean(self):
        data = super().clean()
        if (
            data.get("method") == ConsentMethod.PAPER
            and not (data.get("paper_number") or "").strip()
            and not data.get("scan")
        ):
            self.add_error(
                "paper_number", _("A paper consent needs the form's number or its scan.")
            )
        return data


class SubjectAccessRequestForm(forms.Form):
    received_on = forms.DateField(label=_("Request received on"), widget=DateInput())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        bootstrap(self)


class ErasureForm(forms.Form):
    basis = forms.ChoiceField(label=_("Basis"), choices=ErasureBasis.CHOICES)
    confirm = forms.BooleanField(
        label=_("I understand that erasure cannot be undone"), required=True
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        bootstrap(self)


class RetentionEraseForm(forms.Form):
    customers = forms.TypedMultipleChoiceField(coerce=int, label=_("Customers"))
    confirm = forms.BooleanField(
        label=_("I understand that erasure cannot be undone"), required=True
    )

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customers"].choices = [(pk, pk) for pk in choices]
