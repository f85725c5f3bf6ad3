from django.contrib import admin

from .models import Category, Product, Receipt, ReceiptLine, Return, ReturnLine, Store


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "city", "timezone", "currency", "is_active"]
    list_filter = ["city", "is_active"]
    search_fields = ["code", "name", "city"]


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


# POS API keys: issue (shown once), last use, revoke.
from .admin_keys import PosApiKeyAdmin  # noqa: E402, F401
