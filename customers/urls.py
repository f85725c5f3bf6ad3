from django.urls import path

from .duplicates import views as duplicate_views
from .imports import views as import_views
from .privacy import views as privacy_views
from .views import bulk as views_bulk
from .views import card as card_views
from .views import listing as list_views

app_name = "customers"

urlpatterns = [
    path("", list_views.customer_list, name="list"),
    path("new/", card_views.customer_create, name="create"),
    path("new/duplicates/", card_views.duplicate_check, name="duplicates"),
    path("leads/", list_views.lead_list, name="leads"),
    path("filters/", list_views.saved_filter_save_view, name="filter_save"),
    path("bulk/", views_bulk.customer_bulk, name="bulk"),
    path("filters/<int:pk>/delete/", list_views.saved_filter_delete_view, name="filter_delete"),
    path("export.<str:fmt>", list_views.customer_export_view, name="export"),
    path("export/trace/", list_views.export_trace_view, name="export_trace"),
    path("imports/", import_views.import_list, name="imports"),
    path("imports/<int:pk>/", import_views.import_detail, name="import_detail"),
    path("imports/<int:pk>/progress/", import_views.import_progress, name="import_progress"),
    path("imports/<int:pk>/run/", import_views.import_run, name="import_run"),
    path("imports/<int:pk>/mapping/", import_views.import_save_mapping, name="import_save_mapping"),
    path("imports/<int:pk>/revert/", import_views.import_revert, name="import_revert"),
    path("imports/<int:pk>/report.xlsx", import_views.import_report, name="import_report"),
    path("duplicates/", duplicate_views.duplicate_list, name="duplicates_list"),
    path(
        "duplicates/<int:pk>/dismiss/", duplicate_views.duplicate_dismiss, name="duplicate_dismiss"
    ),
    path("merge/", duplicate_views.merge_screen, name="merge"),
    path("merges/", duplicate_views.merge_list, name="merges"),
    path("merges/<int:pk>/undo/", duplicate_views.merge_undo, name="merge_undo"),
    path("<int:pk>/", card_views.customer_detail, name="detail"),
    path("<int:pk>/edit/", card_views.customer_edit, name="edit"),
    path("<int:pk>/contacts/", card_views.contact_add, name="contact_add"),
    path("<int:pk>/contacts/<int:contact_id>/done/", card_views.contact_done, name="contact_done"),
    path("<int:pk>/consent/", card_views.consent_change, name="consent"),
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
