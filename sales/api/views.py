"""POS endpoints: receipts (one and bulk), returns, catalogue upsert; the key gives the store."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api import error_body, error_response, error_responses, flatten_errors
from crm.inputs import echo_safe
from sales.api import schema  # noqa: F401  (registers the Api-Key scheme)
from sales.catalogue import CatalogueChangeRefused, catalogue_upsert
from sales.ingest.idempotency import IdempotencyConflict
from sales.ingest.receipts import receipt_ingest, receipts_ingest_bulk
from sales.ingest.returns import return_ingest
from sales.selectors import receipt_with_lines, return_with_lines
from sales.signals import ReceiptRefused, answers_extra

from .fastpath import receipt_fast
from .serializers import (
    MAX_BULK_RECEIPTS,
    BulkReceiptsEnvelopeSerializer,
    BulkReceiptsOutputSerializer,
    ProductsBulkInputSerializer,
    ProductsBulkOutputSerializer,
    ReceiptInputSerializer,
    ReceiptOutputSerializer,
    ReturnInputSerializer,
    ReturnOutputSerializer,
)


class IsPosClient(permissions.BasePermission):
    """Only a till's key may write receipts: the key decides the store."""

    message = _("Only a POS API key may send receipts and returns.")

    def has_permission(self, request, view) -> bool:
        # A catalogue key is not a till: it sells nothing and sends no receipts.
        return bool(getattr(request.user, "is_pos_client", False)) and not getattr(
            request.user, "is_catalogue", False
        )


class CanUpsertProducts(permissions.BasePermission):
    """Adding products is enough to call; changing existing ones is checked per product."""

    message = _("You may not change the catalogue.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated) and user.has_perm("sales.add_product")


def refused_response(exc: ReceiptRefused) -> Response:
    return error_response(exc.code, exc.message, exc.status, exc.fields, **exc.extra)


def receipt_body(receipt, extra: dict | None = None) -> dict:
    """The receipt's API answer; `extra` is what receivers add (looked up when not given)."""
    lines = [
        {
            "line_no": line.line_no,
            "sku": line.product.sku,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "discount": line.discount,
            "unit_cost": line.unit_cost,
            "amount": line.amount,
        }
        for line in receipt.lines.all()
    ]
    return ReceiptOutputSerializer(
        {
            "id": receipt.pk,
            "pos_receipt_id": receipt.pos_receipt_id,
            "store": receipt.store.code,
            "purchased_at": receipt.purchased_at,
            "customer_id": receipt.customer_id,
            "payment_method": receipt.payment_method,
            "channel": receipt.channel,
            "total": receipt.total,
            "lines": lines,
            **(answers_extra([receipt]).get(receipt.pk, {}) if extra is None else extra),
        }
    ).data


def return_body(doc) -> dict:
    lines = [
        {
            "line_no": line.receipt_line.line_no,
            "quantity": line.quantity,
            "amount": line.amount,
        }
        for line in doc.lines.all()
    ]
    return ReturnOutputSerializer(
        {
            "id": doc.pk,
            "pos_return_id": doc.pos_return_id,
            "pos_receipt_id": doc.receipt.pos_receipt_id,
            "store": doc.store.code,
            "returned_at": doc.returned_at,
            "amount": sum((line["amount"] for line in lines), 0),
            "lines": lines,
        }
    ).data


def conflict_response(exc: IdempotencyConflict) -> Response:
    return error_response(
        "conflict",
        exc.message,
        status.HTTP_409_CONFLICT,
        {exc.field_name: [str(exc.message)]},
        existing_id=exc.existing_id,
    )


_RECEIPT_EXAMPLE = {
    "pos_receipt_id": "0042-000123",
    "purchased_at": "2025-03-07T18:42:10+03:00",
    "phone": "8 (916) 123-45-67",
    "payment_method": "card",
    "lines": [
        {"sku": "DRESS-001", "quantity": "1", "unit_price": "4990.00", "discount": "500.00"},
        {
            "sku": "SCARF-17",
            "quantity": "2",
            "unit_price": "990.00",
            "name": "Платок шёлковый",
            "category": "Аксессуары/Платки",
        },
    ],
    "total": "6470.00",
}


class ReceiptCreateApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsPosClient]

    @extend_schema(
        operation_id="receipt_create",
        summary="Record one receipt (idempotent by pos_receipt_id)",
        request=ReceiptInputSerializer,
        responses={
            201: OpenApiResponse(ReceiptOutputSerializer, description="Stored."),
            200: OpenApiResponse(
                ReceiptOutputSerializer,
                description="Already stored with the same content; nothing new was stored.",
            ),
            **error_responses(400, 401, 403, 409, 413),
        },
        examples=[OpenApiExample("Receipt", value=_RECEIPT_EXAMPLE, request_only=True)],
        tags=["receipts"],
    )
    def post(self, request):
        serializer = ReceiptInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        store = request.user.store
        try:
            outcome = receipt_ingest(user=request.user, store=store, data=serializer.validated_data)
        except IdempotencyConflict as exc:
            return conflict_response(exc)
        except ReceiptRefused as exc:
            return refused_response(exc)
        return Response(
            receipt_body(receipt_with_lines(outcome.obj.pk)),
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )


class ReceiptBulkApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsPosClient]

    @extend_schema(
        operation_id="receipt_bulk_create",
        summary=f"Record up to {MAX_BULK_RECEIPTS} receipts, each accepted or rejected on its own",
        description=(
            "The response lists every posted receipt in order as `created`, `duplicate` (already "
            "stored with the same content) or `error` with field messages. A 400 means the "
            "envelope itself is wrong (not a list, too many receipts)."
        ),
        request=BulkReceiptsEnvelopeSerializer,
        responses={
            200: BulkReceiptsOutputSerializer,
            **error_responses(400, 401, 403, 413),
        },
        tags=["receipts"],
    )
    def post(self, request):
        data = request.data
        envelope = _bulk_envelope_errors(data)
        if envelope:
            return Response(
                error_body("invalid", _("The request is invalid."), envelope),
                status=status.HTTP_400_BAD_REQUEST,
            )
        child = ReceiptInputSerializer()
        now = timezone.now()
        valid: list[tuple[int, dict]] = []
        rejected: dict[int, dict] = {}
        for index, item in enumerate(data["receipts"]):
            fast = receipt_fast(item, now)
            if fast is not None:
                valid.append((index, fast))
                continue
            try:
                valid.append((index, child.run_validation(item)))
            except serializers.ValidationError as exc:
                rejected[index] = {
                    "code": "invalid",
                    "message": str(_("The receipt is invalid.")),
                    "fields": flatten_errors(exc.detail),
                }
        stored = receipts_ingest_bulk(user=request.user, store=request.user.store, items=valid)
        by_index = {result.index: result for result in stored}
        results = []
        for index, item in enumerate(data["receipts"]):
            if index in rejected:
                pos_id = item.get("pos_receipt_id") if isinstance(item, dict) else None
                results.append(
                    {
                        "index": index,
                        # Quoted back only as text that can be encoded: it failed validation.
                        "pos_receipt_id": echo_safe(pos_id, 64)
                        if isinstance(pos_id, str)
                        else None,
                        "status": "error",
                        "id": None,
                        "error": rejected[index],
                    }
                )
            else:
                result = by_index[index]
                results.append(
                    {
                        "index": index,
                        "pos_receipt_id": result.pos_receipt_id,
                        "status": result.status,
                        "id": result.id,
                        "error": result.error,
                        **(result.extra or {}),
                    }
                )
        counts = {"created": 0, "duplicate": 0, "error": 0}
        for result in results:
            counts[result["status"]] += 1
        return Response({**counts, "results": results})


def _bulk_envelope_errors(data) -> dict[str, list[str]]:
    if not isinstance(data, dict):
        return {"non_field_errors": [str(_('Expected an object {"receipts": [...]}.'))]}
    unknown = [echo_safe(str(key)) for key in data if key != "receipts"]
    if unknown:
        return {key: [str(_("Unknown field."))] for key in unknown[:20]}
    receipts = data.get("receipts")
    if not isinstance(receipts, list):
        return {"receipts": [str(_("Expected a list of receipts."))]}
    if not receipts:
        return {"receipts": [str(_("Send at least one receipt."))]}
    if len(receipts) > MAX_BULK_RECEIPTS:
        return {
            "receipts": [
                str(_("Send at most %(n)s receipts at a time.") % {"n": MAX_BULK_RECEIPTS})
            ]
        }
    return {}


class ReturnCreateApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsPosClient]

    @extend_schema(
        operation_id="return_create",
        summary="Record goods brought back (idempotent by pos_return_id)",
        description=(
            "Lines name the original receipt's `line_no`. Returning more than was bought, over "
            "all earlier returns of that line, is a 400."
        ),
        request=ReturnInputSerializer,
        responses={
            201: OpenApiResponse(ReturnOutputSerializer, description="Stored."),
            200: OpenApiResponse(
                ReturnOutputSerializer, description="Already stored with the same content."
            ),
            **error_responses(400, 401, 403, 409, 413),
        },
        tags=["receipts"],
    )
    def post(self, request):
        serializer = ReturnInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            outcome = return_ingest(store=request.user.store, data=serializer.validated_data)
        except IdempotencyConflict as exc:
            return conflict_response(exc)
        return Response(
            return_body(return_with_lines(outcome.obj.pk)),
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )


STATUSES = ("created", "updated", "unchanged")


class ProductBulkApi(APIView):
    permission_classes = [permissions.IsAuthenticated, CanUpsertProducts]

    @extend_schema(
        operation_id="product_bulk_upsert",
        summary="Create or update catalogue products by SKU",
        description=(
            "All or nothing: one invalid product rejects the request with 400. A till's key "
            "may add new SKUs (existing ones are left as they are, `unchanged`); changing the "
            "price, cost or status of an existing product needs a catalogue key or an "
            "administrator (403 `catalogue_key_required` otherwise)."
        ),
        request=ProductsBulkInputSerializer,
        responses={200: ProductsBulkOutputSerializer, **error_responses(400, 401, 403, 413)},
        tags=["catalogue"],
    )
    def put(self, request):
        serializer = ProductsBulkInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            rows = catalogue_upsert(
                principal=request.user,
                items=serializer.validated_data["products"],
                request=request,
            )
        except CatalogueChangeRefused as exc:
            return error_response(
                "catalogue_key_required", str(exc), status.HTTP_403_FORBIDDEN, exc.fields
            )
        results = [{"sku": row.sku, "id": row.id, "status": row.status} for row in rows]
        count = {name: sum(1 for r in rows if r.status == name) for name in STATUSES}
        return Response({**count, "results": results})
