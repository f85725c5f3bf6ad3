from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Bonus programme")

    def ready(self) -> None:
        # Sales sends these inside the receipt's transaction; sales never imports loyalty.
        from . import receivers  # noqa: F401
