"""Till routes of the REST API, under /api/v1/ (included by crm's API URL conf)."""

from django.urls import path

from .api.views import ProductBulkApi, ReceiptBulkApi, ReceiptCreateApi, ReturnCreateApi

urlpatterns = [
    path("receipts/", ReceiptCreateApi.as_view(), name="api-receipt-create"),
    path("receipts/bulk/", ReceiptBulkApi.as_view(), name="api-receipt-bulk"),
    path("returns/", ReturnCreateApi.as_view(), name="api-return-create"),
    path("products/bulk/", ProductBulkApi.as_view(), name="api-product-bulk"),
]
