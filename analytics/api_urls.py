"""API routes of analytics, mounted at /api/v1/analytics/."""

from django.urls import path

from .api import CustomerValueApi, DashboardApi

urlpatterns = [
    path("dashboard/", DashboardApi.as_view(), name="api-analytics-dashboard"),
    path(
        "customers/<int:pk>/value/",
        CustomerValueApi.as_view(),
        name="api-analytics-customer-value",
    ),
]
