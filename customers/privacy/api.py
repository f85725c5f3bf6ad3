"""API doors to consent to processing: record it (a till's screen, an integration) and withdraw it.

Creating a card through `POST /api/v1/customers/` takes the same `processing_consent` object
(`customers.api`), so a till records the consent with the card in one request.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from crm.api import error_responses

from ..api import ModelPermission, visible_customer_or_404
from ..models import Customer
from .models import ConsentMethod
from .serializers import (
    ProcessingConsentInputSerializer,
    ProcessingStateSerializer,
    processing_body,
)
from .services import processing_consent_withdraw, record_from_api


def _visible(request, view, pk: int) -> Customer:
    customer = visible_customer_or_404(request.user, pk)
    view.check_object_permissions(request, customer)
    return customer


class ProcessingConsentApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    perms = {"POST": ["customers.add_processingconsent"]}
    object_view = True
    serializer_class = ProcessingStateSerializer

    @extend_schema(
        operation_id="customer_processing_consent",
        summary="Record the customer's consent to processing of personal data",
        request=ProcessingConsentInputSerializer,
        responses={201: ProcessingStateSerializer, **error_responses(400, 401, 403, 404, 413)},
        tags=["customers"],
    )
    def post(self, request, pk: int):
        customer = _visible(request, self, pk)
        serializer = ProcessingConsentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record_from_api(
            customer=customer, user=request.user, data=serializer.validated_data, request=request
        )
        return Response(processing_body(customer), status=status.HTTP_201_CREATED)


class ProcessingWithdrawApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    perms = {"POST": ["customers.change_customer"]}
    object_view = True
    serializer_class = ProcessingStateSerializer

    @extend_schema(
        operation_id="customer_processing_withdraw",
        summary="Withdraw consent to processing: mailings stop, erasure is scheduled",
        request=None,
        responses={200: ProcessingStateSerializer, **error_responses(401, 403, 404)},
        tags=["customers"],
    )
    def post(self, request, pk: int):
        customer = _visible(request, self, pk)
        processing_consent_withdraw(
            customer=customer, actor=request.user, method=ConsentMethod.API, request=request
        )
        return Response(processing_body(customer))
