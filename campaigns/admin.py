from django.contrib import admin

from campaigns.models import Campaign, Message, Segment


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "frozen_at", "updated_at"]
    readonly_fields = ["frozen_at", "created_at", "updated_at"]
    raw_id_fields = ["owner"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "channel", "status", "created_by", "created_at"]
    list_filter = ["kind", "channel", "status"]
    readonly_fields = ["status", "created_by", "created_at", "started_at", "finished_at"]
    raw_id_fields = ["segment", "chain_date"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Read-only: message rows change only through delivery, so the log stays truthful."""

    list_display = ["id", "campaign", "customer_id", "occasion", "state", "skip_reason", "sent_at"]
    list_filter = ["state", "skip_reason", "channel"]
    list_select_related = ["campaign"]
    show_full_result_count = False

    def get_queryset(self, request):
        # A message names its customer and may carry a gateway's error with the address.
        from customers.access import visible_customers

        return super().get_queryset(request).filter(customer__in=visible_customers(request.user))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
