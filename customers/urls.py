from django.urls import path

from . import views
from .privacy import views as privacy_views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("new/", views.customer_create, name="create"),
    path("new/duplicates/", views.duplicate_check, name="duplicates"),
    path("leads/", views.lead_list, name="leads"),
    path("export.<str:fmt>", views.customer_export_view, name="export"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/edit/", views.customer_edit, name="edit"),
    path("<int:pk>/contacts/", views.contact_add, name="contact_add"),
    path("<int:pk>/contacts/<int:contact_id>/done/", views.contact_done, name="contact_done"),
    path("<int:pk>/consent/", views.consent_change, name="consent"),
    path(
        "<int:pk>/processing-consent/",
        privacy_views.processing_consent_add,
        name="processing_consent",
    ),
    path(
        "<int:pk>/processing-consent/withdraw/",
        privacy_views.processing_withdraw,
        name="processing_withdraw",
    ),
    path(
        "<int:pk>/subject-access/",
        privacy_views.subject_access_download,
        name="subject_access",
    ),
    path(
        "<int:pk>/subject-access/request/",
        privacy_views.subject_access_request_add,
        name="subject_access_request",
    ),
    path("<int:pk>/erase/", privacy_views.customer_erase_view, name="erase"),
    path("retention/", privacy_views.retention_review, name="retention"),
]
