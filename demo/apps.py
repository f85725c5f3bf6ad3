from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo chain and `manage.py seed_demo`: on top of every app, as it writes them all."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
