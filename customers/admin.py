from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.access import visible_customers
from crm.audit import audit_record
from crm.models import AuditAction

from .models import (
    AcquisitionChannel,
    ConsentEvent,
    Contact,
    Customer,
    CustomerPhone,
    CustomField,
    CustomFieldCategory,
    ImportantDate,
    Tag,
)
from .phones import normalize_phone


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
        "source",
        "created_by",
        "created_at",
        "updated_at",
    ]
    inlines = [PhoneInline, ImportantDateInline, ConsentInline, ContactInline]
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
                    "erased_at",
                ]
            },
        ),
        (_("Record"), {"fields": ["source", "created_by", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        # Staff who can reach the admin still see only what the roles table lets them see.
        return visible_customers(request.user).select_related("home_store")

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
class AcquisitionChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "acquisition_cost"]
    prepopulated_fields = {"code": ["name"]}


# The order of sources, merges, candidates and imports (customers.duplicates, customers.imports).
from .duplicates import admin as duplicates_admin  # noqa: E402, F401
