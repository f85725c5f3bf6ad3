"""Admin of analytics: the settings row an admin edits, the model fits and runs they can read."""

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.admin_audit import SettingsAuditMixin

from . import services
from .models import (
    AnalyticsSettings,
    ClvModelFit,
    CustomerMetrics,
    FavouriteCategories,
    HolidayAffinity,
    RecomputeRun,
)
from .settings_form import AnalyticsSettingsForm


class ReadOnlyAdmin(admin.ModelAdmin):
    """Computed rows: only the pipeline writes them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PerCustomerAdmin(ReadOnlyAdmin):
    """Computed rows about customers: each admin user sees those of the customers they may."""

    def get_queryset(self, request):
        from customers.access import visible_customers

        return super().get_queryset(request).filter(customer__in=visible_customers(request.user))


class SavedByServiceAdmin(admin.ModelAdmin):
    """The settings row is saved by `analytics.services.settings_save`, which also queues the
    recompute (the audit mixin above it in the MRO wraps this save)."""

    def save_model(self, request, obj, form, change):
        services.settings_save(obj)


@admin.register(AnalyticsSettings)
class AnalyticsSettingsAdmin(SettingsAuditMixin, SavedByServiceAdmin):
    # Thresholds in percent and the gift dates as rows (analytics.settings_form).
    form = AnalyticsSettingsForm
    list_display = ["__str__", "window_days", "vip_revenue_share", "vip_cap", "updated_at"]
    fieldsets = [
        (_("Window"), {"fields": ["window_days"]}),
        (_("VIP and A"), {"fields": ["vip_revenue_share", "vip_cap"]}),
        (
            _("B and D"),
            {
                "fields": [
                    "b_growth_ratio",
                    "b_new_customer_days",
                    "b_second_purchase_days",
                    "d_p_alive_threshold",
                ]
            },
        ),
        (
            _("Predicted lifetime value"),
            {
                "fields": [
                    "clv_horizon_months",
                    "annual_discount_rate",
                    "clv_backtest_weeks",
                    "clv_max_backtest_error",
                    "clv_min_repeat_buyers",
                ]
            },
        ),
        (
            _("Holidays"),
            {"fields": ["holidays", "holiday_lookback_days", "holiday_min_years"]},
        ),
    ]

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not AnalyticsSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def get_object(self, request, object_id, from_field=None):
        # One row, pk 1: before anyone saved it, its page shows the defaults (nothing is
        # written until the admin saves).
        found = super().get_object(request, object_id, from_field)
        if found is None and str(object_id) == "1":
            return AnalyticsSettings.load()
        return found

    def changelist_view(self, request, extra_context=None):
        # One row: the list leads straight to it. A GET writes nothing.
        if self.has_view_or_change_permission(request):
            return redirect(reverse("admin:analytics_analyticssettings_change", args=[1]))
        return super().changelist_view(request, extra_context)


@admin.register(ClvModelFit)
class ClvModelFitAdmin(ReadOnlyAdmin):
    list_display = [
        "fitted_at",
        "published",
        "customers",
        "repeat_customers",
        "r",
        "alpha",
        "a",
        "b",
        "bgnbd_log_likelihood",
        "p",
        "q",
        "gamma",
        "gamma_gamma_log_likelihood",
        "seconds",
        "message",
    ]


@admin.register(RecomputeRun)
class RecomputeRunAdmin(ReadOnlyAdmin):
    list_display = ["requested_at", "status", "step", "progress", "customers", "seconds"]
    list_filter = ["status"]


@admin.register(CustomerMetrics)
class CustomerMetricsAdmin(PerCustomerAdmin):
    list_display = [
        "customer",
        "value_class",
        "rfm_segment",
        "revenue_window",
        "predicted_clv",
        "p_alive",
        "computed_at",
    ]
    list_filter = ["value_class", "rfm_segment"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(FavouriteCategories)
class FavouriteCategoriesAdmin(PerCustomerAdmin):
    list_display = ["customer", "__str__", "computed_at"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(HolidayAffinity)
class HolidayAffinityAdmin(PerCustomerAdmin):
    list_display = ["customer", "holiday", "years", "last_year", "category"]
    list_filter = ["holiday"]
    list_select_related = ["customer", "category"]
    raw_id_fields = ["customer", "category"]
