"""The personal-data panel of the customer card (imported by `customers.views.card`)."""

from __future__ import annotations

from django.utils import timezone

from ..models import Customer
from . import selectors
from .forms import ProcessingConsentForm, SubjectAccessRequestForm
from .services import withdrawal_url


def privacy_context(request, customer: Customer) -> dict:
    """What the card's personal-data panel needs."""
    state = selectors.processing_state(customer)
    user = request.user
    return {
        "privacy_state": state,
        "privacy_state_label": dict(selectors.ProcessingState.CHOICES)[state],
        "privacy_history": selectors.processing_consent_history(customer=customer),
        "privacy_requests": selectors.subject_access_open(customer=customer)
        if user.has_perm("customers.answer_subject_access")
        else [],
        "privacy_form": ProcessingConsentForm(prefix="pc", required=True),
        "sar_form": SubjectAccessRequestForm(initial={"received_on": timezone.localdate()}),
        "can_record_processing": user.has_perm("customers.add_processingconsent"),
        "can_withdraw": user.has_perm("customers.change_customer"),
        "can_answer_sar": user.has_perm("customers.answer_subject_access"),
        "can_erase": user.has_perm("customers.erase_customer"),
        "withdrawal_url": withdrawal_url(customer) if customer.erased_at is None else "",
    }
