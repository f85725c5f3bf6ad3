from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        # Campaigns sits above customers: it adds its action to the list's bulk bar here.
        from campaigns.bulk import ADD_TO_SEGMENT
        from customers.bulk import bulk_action_register

        bulk_action_register(ADD_TO_SEGMENT)
