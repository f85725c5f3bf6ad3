from django.urls import path

from .api import CalculateApi

urlpatterns = [
    path("calculate/", CalculateApi.as_view(), name="api-loyalty-calculate"),
]
