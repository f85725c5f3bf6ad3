from django.urls import path

from . import views

app_name = "loyalty"

urlpatterns = [
    path("customers/<int:pk>/", views.card_points, name="card"),
    path("customers/<int:pk>/adjust/", views.card_adjust, name="adjust"),
]
