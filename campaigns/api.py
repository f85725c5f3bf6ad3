"""REST endpoints of campaigns: the segment count for integrations and a campaign's results.

Without `campaigns.manage_campaigns` every endpoint is a 404, as in the pages.
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors
from campaigns.models import Campaign
from campaigns.services.results import campaign_results
from campaigns.services.segments import plain_json, segment_customers, validate_rules
from crm.api import error_responses, strict_query


def _manager_or_404(request) -> None:
    if not selectors.can_manage(request.user):
        raise Http404


class SegmentCountApi(APIView):
    """How many customers the caller can see match a rule tree (the builder's live count)."""

    class InputSerializer(serializers.Serializer):
        rules = serializers.JSONField(encoder=DjangoJSONEncoder)

        class Meta:
            ref_name = "SegmentCountInput"

        def validate_rules(self, value):
            # The API parses JSON numbers with a fraction as Decimal (crm.api); rule values
            # are plain JSON, as the page's builder sends them.
            value = plain_json(value)
            errors = validate_rules(value)
            if errors:
                raise serializers.ValidationError(errors)
            return value or {}

    class OutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()

        class Meta:
            ref_name = "SegmentCount"

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401, 404)},
    )
    def post(self, request):
        _manager_or_404(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        count = segment_customers(user=request.user, rules=data.validated_data["rules"]).count()
        return Response({"count": count})


class CampaignResultsApi(APIView):
    """Recipients against holdout: response, revenue and margin per customer, uplift, counts."""

    class FigureSerializer(serializers.Serializer):
        name = serializers.CharField()
        recipients = serializers.FloatField(allow_null=True)
        holdout = serializers.FloatField(allow_null=True)
        uplift = serializers.FloatField(allow_null=True)
        ci_low = serializers.FloatField(allow_null=True)
        ci_high = serializers.FloatField(allow_null=True)

        class Meta:
            ref_name = "CampaignResultFigure"

    class OutputSerializer(serializers.Serializer):
        campaign_id = serializers.IntegerField()
        recipients = serializers.IntegerField()
        holdout = serializers.IntegerField()
        figures = serializers.ListField(child=serializers.DictField())
        counts = serializers.DictField(child=serializers.IntegerField())

        class Meta:
            ref_name = "CampaignResults"

    @extend_schema(responses={200: OutputSerializer, **error_responses(401, 404)})
    def get(self, request, pk: int):
        strict_query(request)
        _manager_or_404(request)
        if not 0 < pk < 2**63:
            raise Http404
        try:
            campaign = selectors.campaign_get(user=request.user, pk=pk)
        except Campaign.DoesNotExist as error:
            raise Http404 from error
        results = campaign_results(campaign=campaign)
        return Response(
            {
                "campaign_id": results.campaign_id,
                "recipients": results.recipients,
                "holdout": results.holdout,
                "figures": [self.FigureSerializer(f).data for f in results.figures],
                "counts": results.counts,
            }
        )


urlpatterns = [
    path("segments/count/", SegmentCountApi.as_view(), name="api-segment-count"),
    path("<id:pk>/results/", CampaignResultsApi.as_view(), name="api-campaign-results"),
]
