"""Sales' routes of the REST API v1, under /api/v1/ (included by crm's API URL conf).

A customer's receipts are sales' data under the customer's URL: same path and name as before.
The `id` path converter is registered by `crm.converters`, which crm's API URL conf imports.
"""

from django.urls import path

from .api.customers import CustomerReceiptsApi
from .api.views import ProductBulkApi, ReceiptBulkApi, ReceiptCreateApi, ReturnCreateApi

urlpatterns = [
    path(
        "customers/<id:pk>/receipts/", CustomerReceiptsApi.as_view(), name="api-customer-receipts"
    ),
    path("receipts/", ReceiptCreateApi.as_view(), name="api-receipt-create"),
    path("receipts/bulk/", ReceiptBulkApi.as_view(), name="api-receipt-bulk"),
    path("returns/", ReturnCreateApi.as_view(), name="api-return-create"),
    path("products/bulk/", ProductBulkApi.as_view(), name="api-product-bulk"),
]
