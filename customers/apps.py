from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        # Registers the customer-card import processor and the merge signal.
        from crm.audit_display import register_value_labels

        from .imports import customers  # noqa: F401
        from .imports.models import RowOutcome
        from .models import Channel, ConsentMethod, Source
        from .privacy.models import ConsentMethod as ProcessingMethod
        from .privacy.services import ErasureBasis

        # The audit log reads these codes in the reader's language (crm.audit_display).
        register_value_labels("channel", Channel.choices)
        register_value_labels("source", Source.choices)
        register_value_labels("method", ConsentMethod.choices)
        register_value_labels("method", ProcessingMethod.choices)
        register_value_labels("basis", ErasureBasis.CHOICES)
        register_value_labels("counts", RowOutcome.choices)
