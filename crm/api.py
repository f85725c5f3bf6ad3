"""Plumbing every API endpoint shares: the one error format, body limits, pagination, schema.

Every error leaves the API as `{"error": {"code", "message", "fields"}}`; `fields` maps a field
path (`lines[0].quantity`) to its messages, so an integrator's code handles one shape.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from crm.errors import error_body
from crm.inputs import echo_safe
from crm.serializers import StrictSerializer

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "too_large"


def _decimal_or_reject(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(text)
    return value


def _reject_constant(name: str):
    raise ValueError(name)


class LimitedJSONParser(BaseParser):
    """JSON with a body-size cap (413), exact decimals, and no NaN/Infinity.

    DRF reads the stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE check on
    `request.body` never runs; this parser enforces the same cap. Numbers are parsed as Decimal
    so money keeps its kopecks exactly.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        try:
            return json.loads(
                raw.decode("utf-8"),
                parse_float=_decimal_or_reject,
                parse_constant=_reject_constant,
            )
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise exceptions.ParseError(_("The body is not valid JSON.")) from exc


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as `{"lines[0].quantity": ["..."]}`.

    Messages may quote the input ("x" is not a valid choice); NUL and lone surrogates in it
    are replaced, so the error can always be encoded and sent.
    """
    return {
        echo_safe(path, 200): [echo_safe(m, 1000) for m in messages]
        for path, messages in _flatten(detail, prefix).items()
    }


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            # Lists of nested objects report failing items by index.
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "non_field_errors" and prefix:
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for sub, messages in _flatten(value, path).items():
                out.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(m) for m in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(_flatten(item, f"{prefix}[{index}]"))
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def django_validation_error_fields(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if k == "__all__" else k): list(v)
            for k, v in exc.message_dict.items()
        }
    return {"non_field_errors": list(exc.messages)}


def error_response(code: str, message: str, status_code: int, fields=None, **extra) -> Response:
    return Response(error_body(code, message, fields, **extra), status=status_code)


_MESSAGES = {
    status.HTTP_400_BAD_REQUEST: _("The request is invalid."),
}

STORAGE_REFUSED = _("A value is outside what can be stored.")


def database_error_body(exc: DatabaseError) -> tuple[dict, int]:
    """The last resort for a database error that validation should have prevented.

    The driver's text names tables, columns and values, so it is logged for us and never
    shown: a value the database refused (DataError, IntegrityError) is the client's 400 with
    a generic field error; anything else (the database is unreachable) is a 503.
    """
    logger.error("database refused a request's values", exc_info=exc)
    if isinstance(exc, DataError | IntegrityError):
        return (
            error_body("invalid", _MESSAGES[400], {"non_field_errors": [str(STORAGE_REFUSED)]}),
            status.HTTP_400_BAD_REQUEST,
        )
    return (
        error_body("unavailable", _("The service is unavailable; try again later.")),
        status.HTTP_503_SERVICE_UNAVAILABLE,
    )


def exception_handler(exc, context):
    """DRF exception handler that renders every error in the one API error format."""
    # Imported here: this module is loaded from DRF's settings while rest_framework.views is
    # still importing.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DatabaseError):
        from rest_framework.views import set_rollback

        set_rollback()
        body, status_code = database_error_body(exc)
        return Response(body, status=status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(django_validation_error_fields(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        code, message = "invalid", _MESSAGES[status.HTTP_400_BAD_REQUEST]
    else:
        fields = {}
        detail = exc.detail if isinstance(exc, exceptions.APIException) else ""
        message = str(detail) if not isinstance(detail, dict | list) else str(exc)
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
    response.data = error_body(code, message, fields)
    return response


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, not_found, conflict, ...")
    message = serializers.CharField(help_text="Human-readable summary.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field path, e.g. `lines[0].quantity`; empty when not a 400.",
    )
    existing_id = serializers.IntegerField(
        required=False, help_text="On 409 for customers: the card that already has it."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_responses(*codes: int) -> dict:
    """Schema entries for the error statuses an endpoint can answer with."""
    from drf_spectacular.utils import OpenApiResponse

    descriptions = {
        400: "Invalid input; `fields` lists the messages per field.",
        401: "Missing, unknown or revoked credentials.",
        403: "The credentials may not use this endpoint.",
        404: "No such object among those the caller may see.",
        409: "Conflicts with what is already stored.",
        413: "The body is larger than the server accepts.",
        429: "The caller's daily cap of unmasked contact rows is used up.",
    }
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=descriptions[code])
        for code in codes
    }


class CheckedCursorPagination(CursorPagination):
    """Cursor pagination that answers a cursor it did not hand out with a 400.

    DRF decodes the cursor's shape but passes its position straight into the query, where a
    forged one ("abc" for an id, a NUL, a date in year 1) became a database or conversion
    error; here it is checked against the ordering column first. `position_kind` names that
    column's type: "int" or "datetime".
    """

    position_kind = "int"
    invalid_cursor_message = _("This cursor is not one the API handed out.")

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound as exc:
            raise exceptions.ValidationError({self.cursor_query_param: [exc.detail]}) from exc
        if cursor is not None and cursor.position is not None:
            if not self._position_ok(cursor.position):
                raise exceptions.ValidationError(
                    {self.cursor_query_param: [self.invalid_cursor_message]}
                )
        return cursor

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise exceptions.ValidationError(
                {
                    self.page_size_query_param: [
                        _("A whole number from 1 to %(n)s.") % {"n": self.max_page_size}
                    ]
                }
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters

    def _position_ok(self, position: str) -> bool:
        if len(position) > 64:
            return False
        if self.position_kind == "int":
            return position.isascii() and position.isdigit() and 0 <= int(position) < 2**63
        from django.utils.dateparse import parse_datetime

        try:
            stamp = parse_datetime(position)
        except ValueError:
            return False
        return stamp is not None and stamp.tzinfo is not None and 1900 <= stamp.year <= 2200


# --- The published schema says what the API really answers -----------------------------------

# Answers every operation can give whatever its own annotations list: a bad parameter or body
# (400), missing credentials (401), a role that may not use it or an object it may not see
# (403/404), a body over the limit (413).
_COMMON_ERRORS = {
    "400": "Invalid input; `fields` lists the messages per field.",
    "401": "Missing, unknown or revoked credentials.",
    "403": "The credentials may not use this endpoint.",
    "404": "No such object among those the caller may see, or an endpoint the role may not use.",
}
_BODY_ERRORS = {"413": "The body is larger than the server accepts."}
SANE_YEAR_PATTERN = r"^(19[0-9]{2}|2[01][0-9]{2}|2200)-"


def _strict_component_names() -> set[str]:
    names, pending = set(), [StrictSerializer]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        name = cls.__name__.removesuffix("Serializer")
        names |= {name, f"{name}Request"}
    return names


def schema_postprocess(result, generator, request, public):
    """drf-spectacular hook: document the common errors and the strictness of request bodies.

    Request serializers that refuse unknown fields (StrictSerializer) get
    `additionalProperties: false`, so a generated client (and schemathesis) knows that an
    extra property is a 400, not something the server ignores.
    """
    strict = _strict_component_names()
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name in strict and component.get("type") == "object":
            component["additionalProperties"] = False
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and schema.get("type") == "string":
                    schema.setdefault("minLength", 1)  # an empty value is a 400 (strict_query)
                if schema.get("format") in {"date", "date-time"}:
                    # Every date a query takes lies in crm.inputs.SANE_DATES.
                    schema["pattern"] = SANE_YEAR_PATTERN
            wanted = dict(_COMMON_ERRORS)
            if method in {"post", "put", "patch"}:
                wanted.update(_BODY_ERRORS)
            for code, description in wanted.items():
                operation["responses"].setdefault(
                    code, {"description": description, "content": error_ref}
                )
            # Answered by the web server (gunicorn's limit_request_line) before the app, so
            # in its own plain format.
            operation["responses"].setdefault(
                "414", {"description": "The URL is longer than the web server accepts."}
            )
    return result


def strict_query(request) -> None:
    """A 400 for a query parameter given twice or empty, as the published schema says.

    Django and django-filter would silently take the last of repeated values and ignore empty
    ones; a client that sends either has made a mistake worth hearing about.
    """
    fields: dict[str, list[str]] = {}
    for name, values in request.query_params.lists():
        if len(values) > 1:
            fields[name[:100]] = [str(_("Give this parameter once."))]
        elif values == [""]:
            fields[name[:100]] = [str(_("Give a value or leave the parameter out."))]
    if fields:
        raise exceptions.ValidationError(fields)
