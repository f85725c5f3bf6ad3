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

        # Customers sits below sales and imports nothing of it: sales adds the purchase history
        # to the customer's card and subject-access file, and the receipts the customer list's
        # filters look at (customers.extensions).
        from customers import extensions

        from . import card, subject_access
        from .models import Receipt

        extensions.register_card_section("purchases", card.purchases_section)
        extensions.register_card_partial("purchases", card.purchases_partial)
        extensions.register_access_sheet("purchases", subject_access.PURCHASES)
        extensions.register_access_sheet("returns", subject_access.RETURNS)
        extensions.register_purchase_rows(Receipt.objects.all)
