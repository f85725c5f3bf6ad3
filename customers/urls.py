from django.urls import path

from . import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("new/", views.customer_create, name="create"),
    path("new/duplicates/", views.duplicate_check, name="duplicates"),
    path("leads/", views.lead_list, name="leads"),
    path("filters/", views.saved_filter_save_view, name="filter_save"),
    path("bulk/", views.customer_bulk, name="bulk"),
    path("filters/<int:pk>/delete/", views.saved_filter_delete_view, name="filter_delete"),
    path("export.<str:fmt>", views.customer_export_view, name="export"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/edit/", views.customer_edit, name="edit"),
    path("<int:pk>/contacts/", views.contact_add, name="contact_add"),
    path("<int:pk>/contacts/<int:contact_id>/done/", views.contact_done, name="contact_done"),
    path("<int:pk>/consent/", views.consent_change, name="consent"),
]
