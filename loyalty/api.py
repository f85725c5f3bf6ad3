"""The till's calculation: what a cart may burn and will earn, line by line. Writes nothing."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api import error_responses
from sales.api.fastpath import cart_fast
from sales.api.serializers import (
    MAX_LINES,
    MAX_TOTAL,
    AwareDateTimeField,
    CustomerRefMixin,
    ReceiptLineInputSerializer,
    StrictSerializer,
)

from .selectors import cart_calculation

POINTS = {"max_digits": 14, "decimal_places": 2}


class CalculateInputSerializer(CustomerRefMixin, StrictSerializer):
    purchased_at = AwareDateTimeField(required=False, help_text="Default: now.")
    lines = ReceiptLineInputSerializer(many=True, min_length=1, max_length=MAX_LINES)
    points_wanted = serializers.DecimalField(
        **POINTS,
        min_value=Decimal(0),
        max_value=MAX_TOTAL,
        required=False,
        default=Decimal("0"),
        help_text="Points the customer would like to spend.",
    )

    def validate(self, attrs):
        self.validate_customer_ref(attrs)
        return attrs


class CalculateLineSerializer(serializers.Serializer):
    line_no = serializers.IntegerField()
    sku = serializers.CharField()
    amount = serializers.DecimalField(**POINTS)
    burnable = serializers.BooleanField(help_text="May be paid with points.")
    redeemed = serializers.DecimalField(**POINTS)
    paid = serializers.DecimalField(**POINTS, help_text="Paid in money.")
    earn_rate = serializers.DecimalField(max_digits=8, decimal_places=4)
    earned = serializers.DecimalField(**POINTS)


class CalculateOutputSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField(allow_null=True)
    tier = serializers.CharField(allow_null=True)
    available = serializers.DecimalField(**POINTS)
    pending = serializers.DecimalField(**POINTS)
    total = serializers.DecimalField(**POINTS)
    max_redeemable = serializers.DecimalField(**POINTS)
    redeemed = serializers.DecimalField(**POINTS)
    earned = serializers.DecimalField(**POINTS)
    multiplier = serializers.DecimalField(max_digits=5, decimal_places=2)
    to_pay = serializers.DecimalField(**POINTS, help_text="Left to pay in money.")
    lines = CalculateLineSerializer(many=True)


class CanCalculate(permissions.BasePermission):
    message = _("Only a till or a member of staff may calculate points.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if getattr(user, "is_pos_client", False):
            # A catalogue key (the chain's product system) sees no customer and sells nothing.
            return not getattr(user, "is_catalogue", False)
        return bool(user and user.is_authenticated and user.has_perm("customers.view_customer"))


class CalculateApi(APIView):
    permission_classes = [permissions.IsAuthenticated, CanCalculate]

    @extend_schema(
        operation_id="loyalty_calculate",
        summary="What a cart may redeem and will earn, line by line (no writes)",
        description=(
            "Name the customer as on a receipt (customer_id, phone or card) or nobody. The "
            "receipt later posted with `points_redeemed` is checked by the same rules."
        ),
        request=CalculateInputSerializer,
        responses={200: CalculateOutputSerializer, **error_responses(400, 401, 403, 413)},
        tags=["loyalty"],
    )
    def post(self, request):
        now = timezone.now()
        data = cart_fast(request.data, now)
        if data is None:
            serializer = CalculateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        result = cart_calculation(user=request.user, data=data, at=data.get("purchased_at") or now)
        return Response(calculation_render(result))


_CENTS, _RATE = Decimal("0.01"), Decimal("0.0001")
_MONEY = ("available", "pending", "total", "max_redeemable", "redeemed", "earned", "to_pay")
_LINE_MONEY = ("amount", "redeemed", "paid", "earned")


def _text(value: Decimal, places: Decimal) -> str:
    # As DRF's DecimalField renders it (coerced to a string, half-even), without its per-field
    # overhead: the till calls this endpoint on every scan of a cart.
    return format(value.quantize(places, rounding=ROUND_HALF_EVEN), "f")


def calculation_render(result: dict) -> dict:
    """`result` as CalculateOutputSerializer renders it (a test holds the two equal)."""
    body = {
        "customer_id": result["customer_id"],
        "tier": result["tier"],
        **{name: _text(result[name], _CENTS) for name in _MONEY},
        "multiplier": _text(result["multiplier"], _CENTS),
    }
    body["lines"] = [
        {
            "line_no": line["line_no"],
            "sku": line["sku"],
            "burnable": line["burnable"],
            "earn_rate": _text(line["earn_rate"], _RATE),
            **{name: _text(line[name], _CENTS) for name in _LINE_MONEY},
        }
        for line in result["lines"]
    ]
    return body
