"""REST API routes under /api/ (POS API, integrations, OpenAPI schema and docs)."""

from django.http import JsonResponse
from django.urls import include, path, re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

import crm.converters  # noqa: F401 - registers <id:…> before the apps' routes are built
from crm.api import error_body


@csrf_exempt  # it changes nothing, and a CSRF page would be HTML
def api_not_found(request, path: str = ""):
    """Unknown API URLs answer in the API's error format, not with an HTML page."""
    return JsonResponse(error_body("not_found", _("Not found.")), status=404)


urlpatterns = [
    # Apps are included by dotted path only: crm, the core, imports no app.
    path("v1/", include("customers.api_urls")),
    path("v1/", include("sales.api_urls")),
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
