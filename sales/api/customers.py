"""A customer's receipts in the REST API (/api/v1/customers/<id>/receipts/).

The route sits under the customer's URL but serves sales' data, so it lives in sales; the
customer is reached through customers' door and permissions, as on every customer endpoint.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.generics import GenericAPIView

from crm.api import error_responses, strict_query
from customers.api import (
    CUSTOMER_ID,
    ModelPermission,
    RecentFirstPagination,
    visible_customer_or_404,
)
from sales.selectors import customer_receipts
from sales.signals import answers_extra

from .serializers import ReceiptOutputSerializer
from .views import receipt_body


class CustomerReceiptsApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    perms = {"GET": ["sales.view_receipt"]}
    object_view = True
    pagination_class = RecentFirstPagination
    serializer_class = ReceiptOutputSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="customer_receipts",
        summary="A customer's receipts, newest first",
        parameters=[CUSTOMER_ID],
        responses={200: ReceiptOutputSerializer(many=True), **error_responses(401, 403, 404)},
        tags=["customers"],
    )
    def get(self, request, pk: int):
        strict_query(request)
        customer = visible_customer_or_404(request.user, pk)
        self.check_object_permissions(request, customer)
        page = self.paginate_queryset(customer_receipts(customer=customer))
        extra = answers_extra(list(page))
        return self.get_paginated_response([receipt_body(r, extra.get(r.pk, {})) for r in page])
