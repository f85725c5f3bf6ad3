"""REST API routes under /api/ (POS API, integrations, OpenAPI schema and docs)."""

from django.http import JsonResponse
from django.urls import include, path, re_path, register_converter
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from crm.api import error_body
from customers.api import (
    CustomerContactsApi,
    CustomerDetailApi,
    CustomerListCreateApi,
    CustomerLookupApi,
)
from customers.duplicates.api import CustomerMergeApi
from customers.privacy.api import ProcessingConsentApi, ProcessingWithdrawApi
from sales.api.views import ProductBulkApi, ReceiptBulkApi, ReceiptCreateApi, ReturnCreateApi


class IdConverter:
    """An integer id. Any integer matches, so a negative or huge one reaches the view and gets
    the API's JSON 404 (the view checks the range) instead of Django's HTML page."""

    regex = "-?[0-9]{1,40}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")


@csrf_exempt  # it changes nothing, and a CSRF page would be HTML
def api_not_found(request, path: str = ""):
    """Unknown API URLs answer in the API's error format, not with an HTML page."""
    return JsonResponse(error_body("not_found", _("Not found.")), status=404)


v1 = [
    path("customers/lookup/", CustomerLookupApi.as_view(), name="api-customer-lookup"),
    path("customers/merge/", CustomerMergeApi.as_view(), name="api-customer-merge"),
    path("customers/", CustomerListCreateApi.as_view(), name="api-customer-list"),
    path("customers/<id:pk>/", CustomerDetailApi.as_view(), name="api-customer-detail"),
    # A customer's receipts: sales' data under the customer's URL, routed by sales.
    path("", include("sales.api_urls")),
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
    path("receipts/", ReceiptCreateApi.as_view(), name="api-receipt-create"),
    path("receipts/bulk/", ReceiptBulkApi.as_view(), name="api-receipt-bulk"),
    path("returns/", ReturnCreateApi.as_view(), name="api-return-create"),
    path("products/bulk/", ProductBulkApi.as_view(), name="api-product-bulk"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("v1/analytics/", include("analytics.api_urls")),
    path("v1/campaigns/", include("campaigns.api")),
    path("v1/loyalty/", include("loyalty.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up code as a script file: no inline script, so
    # the page works under the Content-Security-Policy (crm/security.py).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Keep last: everything else under /api/ is a JSON 404.
    re_path(r"^(?P<path>[\s\S]*)$", api_not_found),
]
