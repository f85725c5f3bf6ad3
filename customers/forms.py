"""Forms of the customer pages. They parse input; the services in `customers.services` decide."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.forms import bootstrap
from crm.models import Store

from .extensions import filter_choices
from .models import (
    Channel,
    ConsentMethod,
    Contact,
    ContactChannel,
    Customer,
    CustomField,
    CustomFieldType,
    Direction,
    LifecycleStage,
    Tag,
)
from .privacy.selectors import ProcessingState
from .selectors.listing import ListFilters
from .services import CARD_FIELDS

# What the card's edit form offers: every field the service accepts except those set elsewhere
# (extra emails and do-not-contact on their own controls, channel and manager by an admin).
CARD_FORM_FIELDS = [
    name
    for name in CARD_FIELDS
    if name not in {"extra_emails", "acquisition_channel", "assigned_manager", "do_not_contact"}
]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


def _any(label, name: str) -> list:
    # Analytics (above customers) registers these choices in its ready(): customers.extensions.
    return [("", label), *filter_choices(name)]


class CustomerListForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    # Plain choices filled in __init__: one small query each, no server-side cursor per page.
    store = forms.TypedChoiceField(label=_("Store"), coerce=int, required=False, empty_value=None)
    tag = forms.TypedChoiceField(label=_("Tag"), coerce=int, required=False, empty_value=None)
    stage = forms.ChoiceField(
        label=_("Lifecycle stage"),
        choices=[("", _("Any stage")), *LifecycleStage.choices],
        required=False,
    )
    birthday_days = forms.IntegerField(
        label=_("Birthday within (days)"), min_value=0, max_value=366, required=False
    )
    value_class = forms.ChoiceField(
        label=_("Value class"), choices=lambda: _any(_("Any class"), "value_class"), required=False
    )
    rfm_segment = forms.ChoiceField(
        label=_("RFM segment"),
        choices=lambda: _any(_("Any segment"), "rfm_segment"),
        required=False,
    )
    consent = forms.ChoiceField(
        label=_("Consents to"), choices=[("", _("Any")), *Channel.choices], required=False
    )
    processing = forms.ChoiceField(
        label=_("Consent to processing"),
        choices=[("", _("Any")), *ProcessingState.CHOICES],
        required=False,
    )
    purchased_after = forms.DateField(
        label=_("Last purchase after"), required=False, widget=DateInput()
    )
    purchased_before = forms.DateField(
        label=_("Last purchase before"), required=False, widget=DateInput()
    )
    sort = forms.ChoiceField(
        choices=[
            ("name", _("Name")),
            ("-name", _("Name")),
            ("created", _("Created")),
            ("-created", _("Created")),
        ],
        required=False,
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        stores = Store.objects.order_by("name")
        if user is not None and not (
            user.is_superuser or user.has_perm("customers.view_all_customers")
        ):
            from customers.access import user_store_ids

            stores = stores.filter(pk__in=user_store_ids(user))
        self.fields["store"].choices = [("", _("Any store")), *stores.values_list("pk", "name")]
        self.fields["tag"].choices = [
            ("", _("Any tag")),
            *Tag.objects.order_by("name").values_list("pk", "name"),
        ]
        bootstrap(self)

    def list_filters(self) -> ListFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return ListFilters(
            query=(data.get("q") or "").strip(),
            store=data.get("store"),
            tag=data.get("tag"),
            stage=data.get("stage") or "",
            birthday_days=data.get("birthday_days"),
            consent=data.get("consent") or "",
            value_class=data.get("value_class") or "",
            rfm_segment=data.get("rfm_segment") or "",
            processing=data.get("processing") or "",
            purchased_after=data.get("purchased_after"),
            purchased_before=data.get("purchased_before"),
        )

    def sort_order(self) -> tuple[str, bool]:
        value = (self.cleaned_data.get("sort") if self.is_valid() else "") or "name"
        return value.lstrip("-"), value.startswith("-")


class CustomerForm(forms.ModelForm):
    """Card fields plus phones as one comma- or line-separated text box.

    Editing (`partial=True`) changes only the fields the POST carries: a field that is absent
    is left as it is, never erased, so a client that sends a surname alone changes the surname
    alone. Removing phones is therefore an explicit act: the `phones` field must be sent, and
    the numbers it no longer lists are removed.
    """

    phones = forms.CharField(
        label=_("Phones"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One per line; the first is the primary phone. Any format: 8 916 123-45-67."),
    )

    class Meta:
        model = Customer
        fields = CARD_FORM_FIELDS
        widgets = {
            "birth_date": DateInput(),
            "interests": forms.Textarea(attrs={"rows": 2}),
            "preferences": forms.Textarea(attrs={"rows": 2}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user=None, partial: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "phones" not in self.initial:
            self.initial["phones"] = "\n".join(p.number for p in self.instance.phones.all())
        if user is not None and not (
            user.is_superuser or user.has_perm("customers.view_all_customers")
        ):
            from customers.access import user_store_ids

            # The card's current store stays selectable, so a manager who sees the card as
            # its assigned manager can still save it unchanged.
            self.fields["home_store"].queryset = Store.objects.filter(
                Q(pk__in=user_store_ids(user)) | Q(pk=self.instance.home_store_id)
            )
            # A card filed under no store would vanish from this user's list: offer no empty
            # choice (and the service files a card sent without one under the user's store).
            if self.fields["home_store"].queryset.exists():
                self.fields["home_store"].empty_label = None
        if not self.instance.pk and user is not None and "home_store" not in self.initial:
            self.initial["home_store"] = _default_store_id(user)
        self.partial = partial
        self.sent = set(self.fields)
        if partial and self.is_bound:
            self.sent = {name for name in self.fields if name in self.data}
            for name in set(self.fields) - self.sent:
                self.fields[name].required = False
        bootstrap(self)

    def _post_clean(self):
        # Validation of the card is the service's job (customer_update / customer_create); the
        # model's own checks would run twice and disagree on phones and uniqueness.
        pass

    def phone_list(self) -> list[str] | None:
        """The posted phones in order; None when an edit did not send the field (keep them)."""
        if "phones" not in self.sent:
            return None
        raw = self.cleaned_data.get("phones") or ""
        return [p.strip() for p in raw.replace(",", "\n").splitlines() if p.strip()]

    def card_data(self) -> dict:
        """The card fields to set: all of them on a new card, those sent on an edit."""
        return {name: self.cleaned_data.get(name) for name in CARD_FORM_FIELDS if name in self.sent}


class SignUpForm(CustomerForm):
    """The new-card form: the card plus the customer's agreements given at sign-up.

    Agreements are extra (non-model) fields listed in `agreement_fields`, rendered in their own
    block of the page; a subclass or a later feature adds its own agreement (for example the
    consent to processing personal data) by adding a field and its name to that list.
    """

    consent_method = forms.ChoiceField(
        label=_("How the customer agreed"),
        choices=ConsentMethod.choices,
        required=False,
        initial=ConsentMethod.PAPER,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.agreement_fields = []
        for code, label in Channel.choices:
            name = f"consent_{code}"
            self.fields[name] = forms.BooleanField(
                label=_("Agrees to messages by %(channel)s") % {"channel": label},
                required=False,
            )
            self.agreement_fields.append(name)
        self.agreement_fields.append("consent_method")
        bootstrap(self)

    def card_fields(self):
        return [f for f in self if f.name not in self.agreement_fields]

    def agreements(self):
        return [self[name] for name in self.agreement_fields]

    def consents(self) -> dict[str, bool]:
        """Channels the customer agreed to now; nothing is recorded for unticked channels."""
        return {code: True for code in Channel.values if self.cleaned_data.get(f"consent_{code}")}

    def clean(self):
        data = super().clean()
        if any(data.get(f"consent_{c}") for c in Channel.values) and not data.get("consent_method"):
            self.add_error("consent_method", _("Say how the customer agreed."))
        return data


def _default_store_id(user) -> int | None:
    """The store a new card is filed under unless the user picks another: their own store."""
    from customers.access import user_store_ids

    ids = user_store_ids(user)
    return ids[0] if ids else None


def custom_field_form_field(definition: CustomField) -> forms.Field:
    common = {"label": definition.name, "required": False, "help_text": definition.help_text}
    choices = [(c, c) for c in definition.choices or []]
    if definition.type == CustomFieldType.NUMBER:
        return forms.DecimalField(**common)
    if definition.type == CustomFieldType.DATE:
        return forms.DateField(widget=DateInput(), **common)
    if definition.type == CustomFieldType.BOOLEAN:
        return forms.NullBooleanField(**common)
    if definition.type == CustomFieldType.CHOICE:
        return forms.ChoiceField(choices=[("", "—"), *choices], **common)
    if definition.type == CustomFieldType.MULTI:
        return forms.MultipleChoiceField(choices=choices, **common)
    return forms.CharField(max_length=1000, **common)


class CustomFieldsForm(forms.Form):
    """The admin-defined fields of a card.

    As on the card form, an edit changes only the fields the POST carries. A multiple choice
    with nothing ticked sends no value at all, so the page marks each field it shows with a
    hidden `<name>__shown` input: shown and empty means "clear it", absent means "keep it".
    """

    SHOWN = "__shown"

    def __init__(self, *args, definitions=(), **kwargs):
        super().__init__(*args, **kwargs)
        for definition in definitions:
            self.fields[definition.key] = custom_field_form_field(definition)
        bootstrap(self)

    def sent_values(self) -> dict:
        """Cleaned values of the fields this POST carries (or marks as shown)."""
        sent = {}
        for name, value in self.cleaned_data.items():
            key = self.add_prefix(name)
            if key in self.data or f"{key}{self.SHOWN}" in self.data:
                sent[name] = value
        return sent


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = [
            "channel",
            "direction",
            "topic",
            "outcome",
            "agreement",
            "next_step",
            "due_date",
        ]
        widgets = {
            "outcome": forms.Textarea(attrs={"rows": 2}),
            "agreement": forms.Textarea(attrs={"rows": 2}),
            "due_date": DateInput(),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The usual entry: a call the store made. Saves two clicks on every log line.
        self.fields["channel"].initial = ContactChannel.PHONE
        self.fields["direction"].initial = Direction.OUTBOUND
        bootstrap(self)

    def _post_clean(self):
        # contact_record validates the entry as a whole.
        pass


class ConsentForm(forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices)
    granted = forms.BooleanField(required=False)
    note = forms.CharField(max_length=300, required=False)
    method = forms.ChoiceField(choices=ConsentMethod.choices, required=False)


class TraceForm(forms.Form):
    """A leaked file (or a fragment of one) to trace back to its export."""

    file = forms.FileField(
        label=_("Leaked file (CSV or XLSX)"),
        help_text=_("A whole export or a fragment: re-sorted rows or removed columns will do."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 50 * 1024 * 1024:
            raise forms.ValidationError(_("The file is larger than 50 MB."))
        return upload
