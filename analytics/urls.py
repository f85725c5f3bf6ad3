"""Pages of analytics, mounted at /analytics/."""

from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("csv/<slug:name>/", views.chart_csv, name="csv"),
    path("recompute/", views.recompute, name="recompute"),
    path("recompute/status/", views.recompute_status, name="recompute-status"),
    path("loyalty/", views.loyalty_block, name="loyalty"),
]
