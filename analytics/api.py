"""Read-only dashboard API for BI tools: KPIs against the previous period, class distribution.

Scoped like the page: a store manager gets their stores only; without the dashboard
permission the endpoint is a 404.
"""

from __future__ import annotations

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api import strict_query
from crm.inputs import validate_sane_date

from . import selectors


class PeriodInputSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, validators=[validate_sane_date])
    date_to = serializers.DateField(required=False, validators=[validate_sane_date])
    store = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def validate(self, attrs):
        default = selectors.default_period()
        start = attrs.get("date_from") or default.start
        end = attrs.get("date_to") or timezone.localdate()
        if start > end:
            raise serializers.ValidationError({"date_from": [_("Must not be after date_to.")]})
        if (end - start).days > 3660:
            raise serializers.ValidationError({"date_from": [_("A period is at most ten years.")]})
        attrs["period"] = selectors.Period(start, end)
        return attrs


class KpiSerializer(serializers.Serializer):
    current = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    previous = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    change = serializers.FloatField(allow_null=True)


class ValueClassSerializer(serializers.Serializer):
    value_class = serializers.CharField()
    label = serializers.CharField()
    customers = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=20, decimal_places=2)
    customer_share = serializers.FloatField(allow_null=True)
    revenue_share = serializers.FloatField(allow_null=True)


class DashboardOutputSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    previous_from = serializers.DateField()
    previous_to = serializers.DateField()
    stores = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
    kpis = serializers.DictField(child=KpiSerializer())
    value_classes = ValueClassSerializer(many=True)


class DashboardApi(APIView):
    """GET /api/analytics/dashboard/?date_from=&date_to=&store="""

    @extend_schema(parameters=[PeriodInputSerializer], responses=DashboardOutputSerializer)
    def get(self, request):
        strict_query(request)
        if not selectors.can_view_dashboard(request.user):
            raise Http404
        params = PeriodInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        period = params.validated_data["period"]
        store_id = params.validated_data.get("store")
        previous = period.previous()
        data = {
            "date_from": period.start,
            "date_to": period.end,
            "previous_from": previous.start,
            "previous_to": previous.end,
            "stores": selectors.dashboard_store_ids(request.user, store_id),
            "kpis": selectors.dashboard_kpis(request.user, period=period, store_id=store_id),
            "value_classes": selectors.value_class_distribution(request.user),
        }
        return Response(DashboardOutputSerializer(data).data)
