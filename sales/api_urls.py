"""Sales' routes of the REST API v1 that crm's API URL conf includes (`include("sales.api_urls")`).

A customer's receipts are sales' data under the customer's URL: same path and name as before.
The `id` path converter is registered by crm's API URL conf, which includes this one.
"""

from django.urls import path

from .api.customers import CustomerReceiptsApi

urlpatterns = [
    path(
        "customers/<id:pk>/receipts/", CustomerReceiptsApi.as_view(), name="api-customer-receipts"
    ),
]
