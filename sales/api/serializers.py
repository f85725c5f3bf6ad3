"""Input and output shapes of the POS API: strict (unknown fields are errors) and bounded."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.serializers import (  # noqa: F401  (sales' callers import them from here)
    EARLIEST,
    FUTURE_SLACK,
    MAX_ID,
    AwareDateTimeField,
    StrictSerializer,
)
from customers.api_fields import PhoneField  # noqa: F401
from sales.models import PaymentMethod, SalesChannel
from sales.services import money

MAX_QUANTITY = Decimal("100000")
MAX_PRICE = Decimal("1000000000")
MAX_TOTAL = Decimal("999999999999.99")
MAX_LINES = 500
MAX_BULK_RECEIPTS = 1000
MAX_BULK_PRODUCTS = 5000


def money_field(**kwargs) -> serializers.DecimalField:
    kwargs.setdefault("max_value", MAX_PRICE)
    return serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal(0), **kwargs)


def validate_category_path(value: str) -> None:
    parts = [part.strip() for part in value.split("/") if part.strip()]
    if len(parts) > 10:
        raise serializers.ValidationError(_("A category path has at most 10 levels."))
    if any(len(part) > 120 for part in parts):
        raise serializers.ValidationError(_("A category name has at most 120 characters."))


class ReceiptLineInputSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=64, help_text="Product SKU.")
    quantity = serializers.DecimalField(
        max_digits=12,
        decimal_places=3,
        min_value=Decimal("0.001"),
        max_value=MAX_QUANTITY,
        help_text="Units sold (up to 3 decimals for weighed goods).",
    )
    unit_price = money_field(help_text="Price per unit before the line discount.")
    discount = money_field(
        required=False, default=Decimal("0"), help_text="Discount on the whole line."
    )
    unit_cost = money_field(
        required=False,
        allow_null=True,
        default=None,
        help_text="Cost per unit; the catalogue cost when omitted.",
    )
    name = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="Product name, used to create an unknown SKU.",
    )
    category = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        validators=[validate_category_path],
        help_text='Category path ("Одежда/Платья"), used to create an unknown SKU.',
    )

    def validate(self, attrs):
        if attrs["discount"] > attrs["quantity"] * attrs["unit_price"]:
            raise serializers.ValidationError(
                {"discount": [_("Discount cannot exceed the line's price.")]}
            )
        # Each field is within its own limit; their products must fit the money columns too.
        if attrs["quantity"] * attrs["unit_price"] > MAX_TOTAL:
            raise serializers.ValidationError(
                {"quantity": [_("Quantity times unit price is more than a receipt can hold.")]}
            )
        if attrs["unit_cost"] is not None and attrs["quantity"] * attrs["unit_cost"] > MAX_TOTAL:
            raise serializers.ValidationError(
                {"quantity": [_("Quantity times unit cost is more than a receipt can hold.")]}
            )
        return attrs


class CustomerRefMixin(serializers.Serializer):
    customer_id = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True, default=None
    )
    phone = PhoneField(required=False, allow_blank=True, default="")
    card = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")

    def validate_customer_ref(self, attrs):
        given = [name for name in ("customer_id", "phone", "card") if attrs.get(name)]
        if len(given) > 1:
            raise serializers.ValidationError(
                {given[1]: [_("Name the customer by one of customer_id, phone or card.")]}
            )


class ReceiptInputSerializer(CustomerRefMixin, StrictSerializer):
    pos_receipt_id = serializers.CharField(
        max_length=64, help_text="The till's own id, unique per store; the idempotency key."
    )
    purchased_at = AwareDateTimeField(help_text="ISO 8601 with offset.")
    payment_method = serializers.ChoiceField(
        choices=PaymentMethod.choices, required=False, default=PaymentMethod.CARD
    )
    channel = serializers.ChoiceField(
        choices=SalesChannel.choices, required=False, default=SalesChannel.STORE
    )
    lines = ReceiptLineInputSerializer(many=True, min_length=1, max_length=MAX_LINES)
    total = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=MAX_TOTAL,
        help_text="Must equal the sum of line amounts to the kopeck.",
    )
    points_redeemed = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=MAX_TOTAL,
        required=False,
        default=Decimal("0"),
        help_text="Bonus points paid (1 point = 1 ₽), checked against the balance and the rules.",
    )

    def validate(self, attrs):
        self.validate_customer_ref(attrs)
        costs = sum(
            (line["quantity"] * (line["unit_cost"] or 0) for line in attrs["lines"]), Decimal(0)
        )
        if costs > MAX_TOTAL:
            raise serializers.ValidationError(
                {"lines": [_("The lines' total cost is more than a receipt can hold.")]}
            )
        if attrs["points_redeemed"] and not any(
            attrs.get(key) for key in ("customer_id", "phone", "card")
        ):
            raise serializers.ValidationError(
                {"points_redeemed": [_("Points can only be spent by a known customer.")]}
            )
        if attrs["points_redeemed"] > attrs["total"]:
            raise serializers.ValidationError(
                {"points_redeemed": [_("Points cannot pay more than the receipt's total.")]}
            )
        lines_total = sum(
            (
                money(line["quantity"] * line["unit_price"] - line["discount"])
                for line in attrs["lines"]
            ),
            Decimal(0),
        )
        if money(attrs["total"]) != lines_total:
            raise serializers.ValidationError(
                {
                    "total": [
                        _("Lines add up to %(lines)s, not %(total)s.")
                        % {"lines": lines_total, "total": attrs["total"]}
                    ]
                }
            )
        return attrs


class BulkReceiptsInputSerializer(StrictSerializer):
    receipts = ReceiptInputSerializer(many=True, min_length=1, max_length=MAX_BULK_RECEIPTS)


class BulkReceiptsEnvelopeSerializer(StrictSerializer):
    """What the bulk endpoint itself refuses with a 400: the envelope only.

    Each item is judged on its own and an invalid one is reported in `results` with a 200, so
    the published schema leaves the items open instead of promising a 400 for them.
    """

    receipts = serializers.ListField(
        child=serializers.JSONField(),
        min_length=1,
        max_length=MAX_BULK_RECEIPTS,
        help_text="Receipts as POST /api/v1/receipts/ takes them, each accepted or rejected "
        "on its own.",
    )


class ReceiptLineOutputSerializer(serializers.Serializer):
    line_no = serializers.IntegerField()
    sku = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3)
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=2)
    discount = serializers.DecimalField(max_digits=14, decimal_places=2)
    unit_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)


class PointsOutcomeSerializer(serializers.Serializer):
    """The bonus programme's answer about one receipt (filled by the loyalty app's receiver)."""

    requested = serializers.DecimalField(max_digits=14, decimal_places=2)
    redeemed = serializers.DecimalField(max_digits=14, decimal_places=2)
    earned = serializers.DecimalField(max_digits=14, decimal_places=2)
    refused = serializers.BooleanField(help_text="Offline: the redemption no longer fitted.")
    available = serializers.DecimalField(max_digits=14, decimal_places=2)
    pending = serializers.DecimalField(max_digits=14, decimal_places=2)
    tier = serializers.CharField(allow_null=True)


class ReceiptOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pos_receipt_id = serializers.CharField()
    store = serializers.CharField(help_text="Store code.")
    purchased_at = serializers.DateTimeField()
    customer_id = serializers.IntegerField(allow_null=True)
    payment_method = serializers.CharField()
    channel = serializers.CharField()
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    lines = ReceiptLineOutputSerializer(many=True)
    points = PointsOutcomeSerializer(
        required=False, help_text="What the bonus programme did (a known customer only)."
    )


class BulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the posted list.")
    pos_receipt_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["created", "duplicate", "error"])
    id = serializers.IntegerField(allow_null=True, help_text="Receipt id when stored.")
    error = serializers.DictField(
        allow_null=True,
        help_text='`{"code", "message", "fields"}` when the receipt was rejected.',
    )
    points = PointsOutcomeSerializer(
        required=False, allow_null=True, help_text="Bonus points booked with the receipt."
    )


class BulkReceiptsOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    error = serializers.IntegerField()
    results = BulkItemResultSerializer(many=True)


class ReturnLineInputSerializer(StrictSerializer):
    line_no = serializers.IntegerField(
        min_value=1, max_value=32767, help_text="The line number on the original receipt."
    )
    quantity = serializers.DecimalField(
        max_digits=12, decimal_places=3, min_value=Decimal("0.001"), max_value=MAX_QUANTITY
    )


class ReturnInputSerializer(StrictSerializer):
    pos_return_id = serializers.CharField(max_length=64, help_text="Idempotency key per store.")
    pos_receipt_id = serializers.CharField(max_length=64, help_text="The original receipt.")
    returned_at = AwareDateTimeField()
    lines = ReturnLineInputSerializer(many=True, min_length=1, max_length=MAX_LINES)


class ReturnLineOutputSerializer(serializers.Serializer):
    line_no = serializers.IntegerField()
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)


class ReturnOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pos_return_id = serializers.CharField()
    pos_receipt_id = serializers.CharField()
    store = serializers.CharField()
    returned_at = serializers.DateTimeField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    lines = ReturnLineOutputSerializer(many=True)


class ProductInputSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=300)
    category = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        validators=[validate_category_path],
        help_text="Category path.",
    )
    price = money_field()
    cost = money_field(required=False, default=Decimal(0))
    is_active = serializers.BooleanField(required=False, default=True)


class ProductsBulkInputSerializer(StrictSerializer):
    products = ProductInputSerializer(many=True, min_length=1, max_length=MAX_BULK_PRODUCTS)

    def validate_products(self, value):
        seen: set[str] = set()
        for item in value:
            if item["sku"] in seen:
                raise serializers.ValidationError(
                    _("SKU %(sku)s appears twice.") % {"sku": item["sku"]}
                )
            seen.add(item["sku"])
        return value


class ProductResultSerializer(serializers.Serializer):
    sku = serializers.CharField()
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged"])


class ProductsBulkOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField(help_text="Existing SKUs a till's key left as they are.")
    results = ProductResultSerializer(many=True)
