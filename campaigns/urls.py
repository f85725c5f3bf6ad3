from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_create, name="create"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="edit"),
    path("<int:pk>/preview/", views.campaign_preview, name="preview"),
    path("<int:pk>/test-send/", views.campaign_test_send, name="test_send"),
    path("<int:pk>/pick-customer/", views.campaign_customer_picker, name="pick_customer"),
    path("<int:pk>/start/", views.campaign_start_view, name="start"),
    path("<int:pk>/pause/", views.campaign_pause_view, name="pause"),
    path("<int:pk>/resume/", views.campaign_resume_view, name="resume"),
    path("<int:pk>/progress/", views.campaign_progress, name="progress"),
    path("<int:pk>/results/", views.campaign_results, name="results"),
    path("<int:pk>/results.csv", views.campaign_results_csv, name="results_csv"),
    path("segments/", views.segment_list, name="segments"),
    path("segments/new/", views.segment_edit, name="segment_create"),
    path("segments/count/", views.segment_count, name="segment_count"),
    path("segments/<int:pk>/", views.segment_edit, name="segment_edit"),
    path("segments/<int:pk>/members/", views.segment_members, name="segment_members"),
    path("segments/<int:pk>/freeze/", views.segment_freeze_view, name="segment_freeze"),
]
