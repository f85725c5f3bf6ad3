from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SalesConfig(AppConfig):
    name = "sales"
    verbose_name = _("Sales")

    def ready(self) -> None:
        # Purchase history is an import kind of its own, registered with customers' engine;
        # merged cards get their metrics recomputed through the same path as new receipts.
        from customers.duplicates.merge import customers_merged

        from . import history_import  # noqa: F401
        from .ingest.receipts import schedule_metrics_refresh

        def refresh_after_merge(sender, survivor_id, absorbed_ids, undone=False, **kwargs):
            # After an undo the restored cards have their receipts back; after a merge they
            # are gone. The refresh is queued for after the commit.
            schedule_metrics_refresh([survivor_id, *(absorbed_ids if undone else [])])

        customers_merged.connect(
            refresh_after_merge, weak=False, dispatch_uid="sales.refresh_after_merge"
        )
