"""`POST /api/v1/customers/merge/`: the merge for integrations, with the pages' rules."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from crm.api import error_responses

from ..models import Customer
from .merge import MERGE_FIELDS, customer_merge


class CustomerMergeApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None
    filter_backends: list = []

    class InputSerializer(serializers.Serializer):
        survivor_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        absorbed_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
            min_length=1,
            max_length=20,
        )
        choices = serializers.DictField(
            child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
            required=False,
            default=dict,
            help_text="Field name -> id of the card whose value to keep (overrides priority).",
        )

        def validate_choices(self, value):
            unknown = sorted(set(value) - set(MERGE_FIELDS))
            if unknown:
                raise serializers.ValidationError(f"Unknown fields: {', '.join(unknown)}")
            return value

    class OutputSerializer(serializers.Serializer):
        merge_id = serializers.IntegerField()
        survivor_id = serializers.IntegerField()
        absorbed_ids = serializers.ListField(child=serializers.IntegerField())

    serializer_class = InputSerializer

    @extend_schema(
        operation_id="customer_merge",
        summary="Merge two or more cards into one (source priority; consent withdrawal wins)",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
        tags=["customers"],
    )
    def post(self, request):
        if getattr(request.user, "is_pos_client", False):
            raise Http404
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            merge = customer_merge(
                actor=request.user,
                survivor_id=data.validated_data["survivor_id"],
                absorbed_ids=data.validated_data["absorbed_ids"],
                choices=data.validated_data["choices"],
                request=request,
            )
        except Customer.DoesNotExist as exc:
            raise Http404 from exc
        return Response(
            {
                "merge_id": merge.pk,
                "survivor_id": merge.survivor_id_value,
                "absorbed_ids": merge.absorbed_ids,
            }
        )
