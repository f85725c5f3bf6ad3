from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        # Sales announces committed purchases; it does not import analytics (README, layers).
        from sales.signals import purchases_committed, purchases_imported

        from .receivers import recompute_after_import, refresh_after_purchases

        purchases_committed.connect(
            refresh_after_purchases, dispatch_uid="analytics.refresh_after_purchases"
        )
        purchases_imported.connect(
            recompute_after_import, dispatch_uid="analytics.recompute_after_import"
        )

        # The customer list filters by value class and RFM segment; customers cannot import
        # analytics, so analytics hands it the choices (customers.extensions).
        from customers.extensions import register_filter_choices

        from .models import RfmSegment, ValueClass

        register_filter_choices("value_class", lambda: ValueClass.choices)
        register_filter_choices("rfm_segment", lambda: RfmSegment.choices)
