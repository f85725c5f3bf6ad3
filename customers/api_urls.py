"""Customer routes of the REST API, under /api/v1/ (included by crm's API URL conf).

A customer's receipts are routed by sales (`sales.api_urls`), under the same path."""

from django.urls import path

import crm.converters  # noqa: F401 - registers <id:…>

from .api import (
    CustomerContactsApi,
    CustomerDetailApi,
    CustomerListCreateApi,
    CustomerLookupApi,
)
from .duplicates.api import CustomerMergeApi
from .privacy.api import ProcessingConsentApi, ProcessingWithdrawApi

urlpatterns = [
    path("customers/lookup/", CustomerLookupApi.as_view(), name="api-customer-lookup"),
    path("customers/merge/", CustomerMergeApi.as_view(), name="api-customer-merge"),
    path("customers/", CustomerListCreateApi.as_view(), name="api-customer-list"),
    path("customers/<id:pk>/", CustomerDetailApi.as_view(), name="api-customer-detail"),
    path(
        "customers/<id:pk>/contacts/", CustomerContactsApi.as_view(), name="api-customer-contacts"
    ),
    path(
        "customers/<id:pk>/processing-consent/",
        ProcessingConsentApi.as_view(),
        name="api-customer-processing-consent",
    ),
    path(
        "customers/<id:pk>/processing-consent/withdraw/",
        ProcessingWithdrawApi.as_view(),
        name="api-customer-processing-withdraw",
    ),
]
