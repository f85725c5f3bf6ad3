"""API routes of analytics, mounted at /api/v1/analytics/."""

from django.urls import path

from .api import DashboardApi

urlpatterns = [
    path("dashboard/", DashboardApi.as_view(), name="api-analytics-dashboard"),
]
