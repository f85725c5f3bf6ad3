"""Forms of the import pages: the upload, and the mapping with its options."""

from __future__ import annotations

import itertools

from django import forms
from django.apps import apps
from django.utils.translation import gettext_lazy as _

from customers.access import user_store_ids

from .customers import MATCH_KEYS, UPDATABLE, field_label
from .mapping import targets_for
from .models import ImportKind, ImportMapping
from .services import sees_all_stores

MATCH_LABELS = {"phone": _("Phone"), "card": _("Loyalty card"), "email": _("Email")}
# Every order of the three keys, offered by name ("Phone → Loyalty card → Email"), not as codes.
MATCH_ORDERS = [",".join(order) for order in itertools.permutations(MATCH_KEYS)]


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("The file contains"), choices=ImportKind.choices)
    file = forms.FileField(label=_("File (XLSX or CSV)"))
    store = forms.ModelChoiceField(label=_("Store"), queryset=None, required=False)
    saved_mapping = forms.ModelChoiceField(
        label=_("Saved mapping"), queryset=ImportMapping.objects.all(), required=False
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        Store = apps.get_model("crm", "Store")
        stores = Store.objects.filter(is_active=True)
        if not sees_all_stores(user):
            stores = stores.filter(pk__in=user_store_ids(user))
            self.fields["store"].required = True
        self.fields["store"].queryset = stores
        self.fields["store"].help_text = _(
            "New cards without a store column get this home store; receipts without one "
            "are this store's."
        )


class MappingForm(forms.Form):
    """One choice per column, then the matching options (customers only)."""

    policy = forms.ChoiceField(
        label=_("What to do"),
        choices=[
            ("both", _("Create new cards and update existing ones")),
            ("create", _("Only create new cards")),
            ("update", _("Only update existing cards")),
        ],
        required=False,
    )
    match_order = forms.ChoiceField(
        label=_("Match cards by (in this order)"), required=False, choices=()
    )
    overwrite = forms.MultipleChoiceField(
        label=_("Fields the file may overwrite (empty fields are always filled)"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    clear_empty = forms.BooleanField(
        label=_("Empty cells clear overwritable fields"), required=False
    )

    def __init__(self, *args, job, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        choices = [("", _("— ignore —"))] + [(t.key, str(t.label)) for t in targets_for(job.kind)]
        for index, header in enumerate(job.headers):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=header or _("Column %(n)s") % {"n": index + 1},
                choices=choices,
                required=False,
                initial=job.mapping.get(str(index), ""),
            )
        self.fields["overwrite"].choices = [(f, field_label(f)) for f in UPDATABLE]
        options = job.options or {}
        self.fields["policy"].initial = options.get("policy", "both")
        self.fields["match_order"].choices = [
            (order, " → ".join(str(MATCH_LABELS[key]) for key in order.split(",")))
            for order in MATCH_ORDERS
        ]
        self.fields["match_order"].initial = ",".join(options.get("match_order", MATCH_KEYS))
        self.fields["overwrite"].initial = options.get("overwrite", [])
        self.fields["clear_empty"].initial = options.get("clear_empty", False)
        self.fields["match_order"].help_text = _(
            "A row is matched by the first of these it has; a phone or card of another "
            "customer's is an error whatever the order."
        )

    def column_fields(self):
        return [self[f"col_{i}"] for i in range(len(self.job.headers))]

    def mapping(self) -> dict[str, str]:
        return {
            str(i): self.cleaned_data.get(f"col_{i}", "") or ""
            for i in range(len(self.job.headers))
        }

    def options(self) -> dict:
        order = [k.strip() for k in (self.cleaned_data.get("match_order") or "").split(",")]
        return {
            "policy": self.cleaned_data.get("policy") or "both",
            "match_order": [k for k in order if k],
            "overwrite": self.cleaned_data.get("overwrite") or [],
            "clear_empty": self.cleaned_data.get("clear_empty", False),
        }


class SaveMappingForm(forms.Form):
    name = forms.CharField(label=_("Save this mapping as"), max_length=100)
