from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from campaigns.urls import public_urlpatterns as campaign_public_urls
from customers.privacy.views import withdraw_link

from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", include("crm.api_urls")),
    path("", include("crm.web_urls")),
    path("", include((campaign_public_urls, "campaigns_public"))),
    path("privacy/withdraw/<str:token>/", withdraw_link, name="privacy_withdraw"),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
