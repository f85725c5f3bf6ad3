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
from customers.access import visible_customers

from . import selectors


class PeriodInputSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, validators=[validate_sane_date])
    date_to = serializers.DateField(required=False, validators=[validate_sane_date])
    store = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    currency = serializers.CharField(
        required=False,
        max_length=3,
        help_text="Money is never added across currencies: the stores selling in this one "
        "(default: the chain's main currency).",
    )

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
    change = serializers.FloatField(allow_null=True, help_text="Relative change (0.1 = +10%).")
    change_pp = serializers.FloatField(
        allow_null=True, help_text="For rates: the change in percentage points."
    )


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
    currency = serializers.CharField()
    stores = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
    kpis = serializers.DictField(child=KpiSerializer())
    value_classes = ValueClassSerializer(many=True)
    model = serializers.JSONField(
        allow_null=True,
        help_text="The latest CLV fit: parameters, log-likelihoods, customers used, sample "
        "size, whether it passed its sanity gate (and why not), and its backtest.",
    )


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
        currency = params.validated_data.get("currency")
        previous = period.previous()
        data = {
            "date_from": period.start,
            "date_to": period.end,
            "previous_from": previous.start,
            "previous_to": previous.end,
            "currency": currency or selectors.chain_currencies()[0],
            "stores": selectors.dashboard_store_ids(request.user, store_id, currency),
            "kpis": selectors.dashboard_kpis(
                request.user, period=period, store_id=store_id, currency=currency
            ),
            "value_classes": selectors.value_class_distribution(request.user),
            "model": selectors.model_summary(),
        }
        return Response(DashboardOutputSerializer(data).data)


class CustomerValueSerializer(serializers.Serializer):
    figure = serializers.CharField()
    label = serializers.CharField()
    value = serializers.CharField(allow_null=True, help_text="A decimal string, or null.")
    explanation = serializers.CharField()


class CustomerValueOutputSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    currency = serializers.CharField()
    clv_basis = serializers.CharField(help_text="model, fallback, or empty before any run.")
    fallback_reasons = serializers.ListField(child=serializers.CharField())
    figures = CustomerValueSerializer(many=True)


class CustomerValueApi(APIView):
    """GET /api/v1/analytics/customers/<id>/value/: the card's value figures, each explained in
    the reader's language. Anyone who may see the card may read them; others get a 404."""

    @extend_schema(responses=CustomerValueOutputSerializer)
    def get(self, request, pk: int):
        customer = visible_customers(request.user).filter(pk=pk).first()
        if customer is None:
            raise Http404
        return Response(CustomerValueOutputSerializer(selectors.customer_value(customer)).data)
