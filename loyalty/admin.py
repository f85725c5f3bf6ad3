"""The programme's settings in the admin. The ledger is read-only here: points change only
through the services (receipts, returns, the audited adjustment on the card)."""

from django.contrib import admin

from crm.admin_site import ReadOnlyAdmin

from .models import Account, Entry, ProductRule, Programme, Promotion, Tier


@admin.register(Programme)
class ProgrammeAdmin(admin.ModelAdmin):
    list_display = ["__str__", "is_active", "max_burn_share", "hold_days", "earn_months"]

    def has_add_permission(self, request) -> bool:
        return not Programme.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["name", "threshold", "earn_rate"]


@admin.register(ProductRule)
class ProductRuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "no_earn", "no_burn", "earn_rate"]
    raw_id_fields = ["product"]


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ["name", "starts_at", "ends_at", "multiplier"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["customer_id", "tier", "available", "pending", "debt", "spend_12m"]
    list_select_related = ["tier"]
    raw_id_fields = ["customer"]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "account_id", "kind", "available_delta", "pending_delta", "debt_delta"]
    list_filter = ["kind"]
