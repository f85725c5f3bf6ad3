from django.contrib import admin
from django.db.models import Q

from customers.access import user_store_ids, visible_customers

from .models import Category, Product, Receipt, ReceiptLine, Return, ReturnLine


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["path", "parent"]
    search_fields = ["path"]
    readonly_fields = ["path"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "category", "price", "cost", "is_active"]
    list_filter = ["is_active", "category"]
    search_fields = ["=sku", "name"]
    list_select_related = ["category"]
    show_full_result_count = False


class ReceiptLineInline(admin.TabularInline):
    model = ReceiptLine
    extra = 0
    fields = [
        "line_no",
        "product",
        "quantity",
        "unit_price",
        "discount",
        "unit_cost",
        "amount",
        "margin",
    ]
    readonly_fields = ["amount", "margin"]
    raw_id_fields = ["product"]


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    list_display = [
        "pos_receipt_id",
        "store",
        "customer",
        "purchased_at",
        "total",
        "payment_method",
        "channel",
    ]
    list_filter = ["store", "payment_method", "channel"]
    search_fields = ["=pos_receipt_id"]
    date_hierarchy = "purchased_at"
    list_select_related = ["store", "customer"]
    raw_id_fields = ["customer"]
    inlines = [ReceiptLineInline]
    show_full_result_count = False

    def get_queryset(self, request):
        return receipts_for_admin(request.user, super().get_queryset(request))


class ReturnLineInline(admin.TabularInline):
    model = ReturnLine
    extra = 0
    raw_id_fields = ["receipt_line"]


@admin.register(Return)
class ReturnAdmin(admin.ModelAdmin):
    list_display = ["pos_return_id", "store", "receipt", "returned_at"]
    list_filter = ["store"]
    search_fields = ["=pos_return_id", "=receipt__pos_receipt_id"]
    list_select_related = ["store", "receipt"]
    raw_id_fields = ["receipt"]
    inlines = [ReturnLineInline]

    def get_queryset(self, request):
        receipts = receipts_for_admin(request.user, Receipt.objects.all())
        return super().get_queryset(request).filter(receipt__in=receipts)


def receipts_for_admin(user, receipts):
    """Receipts of the customers `user` may see, and their own stores' anonymous receipts.

    The admin follows the roles table like the app: a receipt names its customer and what
    they bought, so it is customer data.
    """
    if user.is_superuser or user.has_perm("customers.view_all_customers"):
        return receipts
    return receipts.filter(
        Q(customer__in=visible_customers(user))
        | Q(customer__isnull=True, store__in=user_store_ids(user))
    )


# POS API keys: issue (shown once), last use, revoke.
from .admin_keys import PosApiKeyAdmin  # noqa: E402, F401
