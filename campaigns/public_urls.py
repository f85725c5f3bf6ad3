"""Public, no login: the unsubscribe link in every message (included at the site root by crm)."""

from django.urls import path

from . import views

app_name = "campaigns_public"

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe_view, name="unsubscribe"),
]
