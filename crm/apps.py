from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("Clientele core")

    def ready(self) -> None:
        from . import signals  # noqa: F401  (audit receivers for logins)
