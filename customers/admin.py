from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.admin_audit import SettingsAuditMixin
from crm.audit import audit_record
from crm.models import AuditAction
from customers.access import (
    can_export,
    can_see_contact_details,
    mask_email,
    mask_phone,
    mask_text,
    visible_customers,
)

from .models import (
    AcquisitionChannel,
    ConsentEvent,
    Contact,
    Customer,
    CustomerPhone,
    CustomField,
    CustomFieldCategory,
    ImportantDate,
    ProcessingConsent,
    ProcessingConsentDocument,
    SubjectAccessRequest,
    Tag,
)
from .phones import normalize_phone
from .privacy.services import ErasureBasis, customer_erase


class PhoneForm(forms.ModelForm):
    class Meta:
        model = CustomerPhone
        fields = ["number", "kind", "is_primary"]

    def clean_number(self):
        number = normalize_phone(self.cleaned_data["number"])
        taken = CustomerPhone.objects.filter(number=number).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(_("This phone belongs to another customer."))
        return number


class PhoneInline(admin.TabularInline):
    model = CustomerPhone
    form = PhoneForm
    extra = 0


class ImportantDateInline(admin.TabularInline):
    model = ImportantDate
    extra = 0


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ["at", "staff", "channel", "direction", "topic", "agreement", "next_step", "due_date"]
    autocomplete_fields = ["staff"]
    ordering = ["-at"]
    show_change_link = True


class ConsentInline(admin.TabularInline):
    """Consent history is a legal record: shown, never edited here."""

    model = ConsentEvent
    extra = 0
    fields = ["at", "channel", "granted", "source", "actor", "note"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _lists_unmasked(user) -> bool:
    """A list of contacts is an export: unmasked in the changelist only for users who may both
    see contact details and export; anyone else gets them masked there, and unmasked only on
    the single (audited) card page if they may see contact details."""
    return can_see_contact_details(user) and can_export(user)


class ProcessingConsentInline(admin.TabularInline):
    """Consent to processing is a legal record too: shown, never edited here."""

    model = ProcessingConsent
    extra = 0
    fields = ["at", "document", "granted", "method", "paper_number", "scan", "taken_by", "store"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "surname",
        "first_name",
        "patronymic",
        "phone",
        "card_number",
        "home_store",
        "lifecycle_stage",
        "created_at",
    ]
    list_filter = [
        "lifecycle_stage",
        "home_store",
        "gender",
        "consent_email",
        "consent_sms",
        "do_not_contact",
        "tags",
        "acquisition_channel",
    ]
    search_fields = ["surname", "first_name", "=phone", "=card_number", "email"]
    list_select_related = ["home_store"]
    autocomplete_fields = ["assigned_manager"]
    filter_horizontal = ["tags"]
    readonly_fields = [
        "phone",
        "consent_email",
        "consent_sms",
        "consent_messenger",
        "consent_phone",
        "erased_at",
        "processing_document",
        "processing_consent_at",
        "processing_withdrawn_at",
        "erasure_due_at",
        "pseudonym",
        "source",
        "created_by",
        "created_at",
        "updated_at",
    ]
    inlines = [
        PhoneInline,
        ImportantDateInline,
        ConsentInline,
        ProcessingConsentInline,
        ContactInline,
    ]
    delete_confirmation_template = "admin/customers/customer/erase_confirmation.html"
    show_full_result_count = False  # a COUNT(*) over a million cards on every page is waste
    fieldsets = [
        (
            _("Identity"),
            {"fields": [("surname", "first_name", "patronymic"), "gender", "birth_date"]},
        ),
        (
            _("Contact details"),
            {
                "fields": [
                    "phone",
                    "email",
                    "extra_emails",
                    "card_number",
                    ("postal_code", "city"),
                    "address",
                ]
            },
        ),
        (
            _("Work and family"),
            {
                "fields": [
                    ("workplace", "position"),
                    "marital_status",
                    "children_count",
                    "interests",
                    "preferences",
                    "notes",
                    "custom_fields",
                    "tags",
                ]
            },
        ),
        (
            _("Relationship"),
            {
                "fields": [
                    "lifecycle_stage",
                    "acquisition_channel",
                    "home_store",
                    "assigned_manager",
                ]
            },
        ),
        (
            _("Consent"),
            {
                "fields": [
                    ("consent_email", "consent_sms", "consent_messenger", "consent_phone"),
                    "do_not_contact",
                ]
            },
        ),
        (
            _("Personal data"),
            {
                "fields": [
                    "processing_document",
                    ("processing_consent_at", "processing_withdrawn_at"),
                    ("erasure_due_at", "erased_at", "pseudonym"),
                ]
            },
        ),
        (_("Record"), {"fields": ["source", "created_by", "created_at", "updated_at"]}),
    ]

    # Without the contact-details right the admin shows what the card page shows: masked
    # values, read-only (an edit would overwrite what the user cannot see), exact-match search
    # only (a fragment search would spell an email out letter by letter).
    _CONTACT_FIELDS = {
        "phone": "masked_phone",
        "email": "masked_email",
        "extra_emails": "masked_extra_emails",
        "postal_code": "masked_postal_code",
        "address": "masked_address",
    }

    def get_queryset(self, request):
        # Staff who can reach the admin still see only what the roles table lets them see.
        return visible_customers(request.user).select_related("home_store")

    def get_list_display(self, request):
        fields = super().get_list_display(request)
        if _lists_unmasked(request.user):
            return fields
        return [self._CONTACT_FIELDS.get(f, f) for f in fields]

    def get_search_fields(self, request):
        if _lists_unmasked(request.user):
            return super().get_search_fields(request)
        return ["surname", "first_name", "=phone", "=card_number", "=email"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if can_see_contact_details(request.user):
            return fieldsets

        def swap(entry):
            if isinstance(entry, tuple | list):
                return tuple(swap(e) for e in entry)
            return self._CONTACT_FIELDS.get(entry, entry)

        masked = [
            (name, {**opts, "fields": [swap(f) for f in opts["fields"]]})
            for name, opts in fieldsets
        ]
        for _name, opts in masked:
            if "masked_phone" in opts["fields"]:
                # The phone editor (an inline) is hidden; its numbers show masked here.
                opts["fields"].insert(opts["fields"].index("masked_phone") + 1, "masked_phones")
        return masked

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not can_see_contact_details(request.user):
            fields += [*self._CONTACT_FIELDS.values(), "masked_phones"]
        return fields

    def get_inlines(self, request, obj):
        inlines = super().get_inlines(request, obj)
        if can_see_contact_details(request.user):
            return inlines
        return [i for i in inlines if i is not PhoneInline]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            # Opening a card here is a card read like the app's, and audited the same way.
            customer = self.get_object(request, object_id)
            if customer is not None:
                audit_record(
                    actor=request.user,
                    action=AuditAction.CUSTOMER_VIEW,
                    obj=customer,
                    request=request,
                    via="admin",
                )
        return response

    @admin.display(description=_("phone"))
    def masked_phone(self, obj) -> str:
        return mask_phone(obj.phone)

    @admin.display(description=_("phones"))
    def masked_phones(self, obj) -> str:
        return ", ".join(mask_phone(p.number) for p in obj.phones.all()) if obj.pk else ""

    @admin.display(description=_("email"))
    def masked_email(self, obj) -> str:
        return mask_email(obj.email)

    @admin.display(description=_("other emails"))
    def masked_extra_emails(self, obj) -> str:
        return ", ".join(mask_email(e) for e in obj.extra_emails or ())

    @admin.display(description=_("postal code"))
    def masked_postal_code(self, obj) -> str:
        return mask_text(obj.postal_code)

    @admin.display(description=_("address"))
    def masked_address(self, obj) -> str:
        return mask_text(obj.address)

    # Deleting a card would cascade over its contacts, consents and metrics (or be blocked by
    # the read-only admins of those) and orphan its receipts. "Delete" here is the erasure of
    # customers.privacy: audited, irreversible, receipts kept under a pseudonymous id.
    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.erased_at is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.erased_at is not None:
            return False
        return request.user.has_perm("customers.erase_customer")

    def get_actions(self, request):
        # No bulk delete: bulk anonymisation is the retention review's, with its confirmation.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request):
        # Nothing is deleted, so nothing related is listed or checked.
        return [str(obj) for obj in objs], {Customer._meta.verbose_name: len(objs)}, set(), []

    def delete_model(self, request, obj):
        try:
            customer_erase(
                customer=obj, actor=request.user, basis=ErasureBasis.ADMIN_DELETE, request=request
            )
        except ValidationError as exc:
            raise PermissionDenied(" ".join(exc.messages)) from exc

    def delete_queryset(self, request, queryset):
        for customer in queryset:
            self.delete_model(request, customer)

    def response_delete(self, request, obj_display, obj_id):
        self.message_user(
            request,
            gettext(
                "The personal data of customer #%(id)s is erased; receipts and metrics stay "
                "under a pseudonymous id."
            )
            % {"id": obj_id},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:customers_customer_changelist"))

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action=AuditAction.CUSTOMER_UPDATE if change else AuditAction.CUSTOMER_CREATE,
            obj=obj,
            request=request,
            via="admin",
            fields=sorted(form.changed_data),
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Mirror the primary phone onto the card, as customers.services does.
        customer = form.instance
        primary = customer.phones.filter(is_primary=True).first() or customer.phones.first()
        number = primary.number if primary else ""
        if customer.phone != number:
            customer.phone = number
            customer.save(update_fields=["phone", "updated_at"])


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = [
        "at",
        "customer",
        "staff",
        "channel",
        "direction",
        "topic",
        "due_date",
        "done_at",
    ]
    list_filter = ["channel", "direction", ("due_date", admin.EmptyFieldListFilter)]
    search_fields = ["topic", "agreement", "customer__surname"]
    list_select_related = ["customer", "staff"]
    raw_id_fields = ["customer"]
    date_hierarchy = "at"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(customer__in=visible_customers(request.user))


@admin.register(CustomFieldCategory)
class CustomFieldCategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "purpose", "order"]
    list_editable = ["order"]


@admin.register(CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "type", "category", "order", "is_active"]
    list_filter = ["category", "type", "is_active"]
    prepopulated_fields = {"key": ["name"]}


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "color"]
    search_fields = ["name"]


@admin.register(AcquisitionChannel)
class AcquisitionChannelAdmin(SettingsAuditMixin, admin.ModelAdmin):
    list_display = ["name", "code", "acquisition_cost"]
    prepopulated_fields = {"code": ["name"]}


# The order of sources, merges, candidates and imports (customers.duplicates, customers.imports).
from .duplicates import admin as duplicates_admin  # noqa: E402, F401


@admin.register(ProcessingConsentDocument)
class ProcessingConsentDocumentAdmin(admin.ModelAdmin):
    """The consent text by version. A version someone agreed to is frozen: publish a new one."""

    list_display = ["version", "title", "language", "effective_from", "requires_reconsent"]
    list_filter = ["language", "requires_reconsent"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.consents.exists():
            return ["version", "title", "text", "language", "effective_from", "requires_reconsent"]
        return []

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.consents.exists():
            return False
        return super().has_delete_permission(request, obj)


@admin.register(SubjectAccessRequest)
class SubjectAccessRequestAdmin(admin.ModelAdmin):
    list_display = ["customer", "received_on", "due_on", "answered_at", "answered_by"]
    list_filter = [("answered_at", admin.EmptyFieldListFilter)]
    readonly_fields = [
        "customer",
        "received_on",
        "due_on",
        "received_by",
        "answered_at",
        "answered_by",
        "file_sha256",
        "note",
    ]
    list_select_related = ["customer", "answered_by"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(customer__in=visible_customers(request.user))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
