"""What any input must be before it goes further: the checks every door shares.

PostgreSQL cannot store a NUL character in text or JSON, and a lone UTF-16 surrogate (which
JSON's `\\ud800` escapes produce) cannot even be encoded to send it; either one reaching a query
is a driver error, so they are refused where the input enters: `validate_safe_text` for form,
serializer and rule values, and `InputBoundaryMiddleware` for every query string. Dates are kept
to `SANE_DATES`, where calendar arithmetic (a previous period, a local day's start in UTC) can
never leave the years Python and PostgreSQL share.

A body sent with `Transfer-Encoding: chunked` has no Content-Length, and Django reads such a
body as empty; the middleware reads it when the server has de-chunked it (gunicorn says so with
`wsgi.input_terminated`), refuses it with 413 past the upload limit, and answers 411 when the
server cannot tell where it ends, so a POST is never silently taken for an empty one.
"""

from __future__ import annotations

import datetime as dt
import io
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.errors import error_body

_UNSAFE = re.compile("[\x00\ud800-\udfff]")

SANE_DATES = (dt.date(1900, 1, 1), dt.date(2200, 12, 31))


def is_safe_text(value: str) -> bool:
    """False when `value` holds a NUL or a lone surrogate, which no column can take."""
    return _UNSAFE.search(value) is None


def echo_safe(value: str, limit: int = 100) -> str:
    """`value` fit to be quoted back in an error: cut short, NUL and lone surrogates replaced."""
    return _UNSAFE.sub("\ufffd", value[:limit])


def validate_safe_text(value) -> None:
    """Validator: refuse NUL and lone surrogates in a string (anything else passes)."""
    if isinstance(value, str) and not is_safe_text(value):
        raise ValidationError(_("Contains characters that cannot be stored."), code="unsafe_text")


def validate_sane_date(value: dt.date | None) -> None:
    """Validator: a date between 1900 and 2200, where period arithmetic stays in range."""
    if value is not None and not (SANE_DATES[0] <= value <= SANE_DATES[1]):
        raise ValidationError(
            _("Give a date between %(start)s and %(end)s."),
            code="out_of_range",
            params={"start": SANE_DATES[0].year, "end": SANE_DATES[1].year},
        )


def unsafe_query_params(query) -> list[str]:
    """Names of the query parameters (a QueryDict) whose name or any value is not safe text."""
    return [
        name
        for name, values in query.lists()
        if not is_safe_text(name) or not all(is_safe_text(v) for v in values)
    ]


def _bad_request(request, status: int, code: str, message: str, fields=None):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code, message, fields), status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class InputBoundaryMiddleware:
    """Refuse query strings that no column can store, and read or refuse chunked bodies.

    First in MIDDLEWARE: nothing may read the body (CSRF reads POST) before a chunked one is
    put in place.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = self._chunked_body(request)
        if refused is not None:
            return refused
        bad = unsafe_query_params(request.GET)
        if bad:
            message = gettext("The address contains characters that cannot be used.")
            fields = {name[:100].replace("\x00", "") or "query": [message] for name in bad[:20]}
            return _bad_request(request, 400, "invalid", message, fields)
        return self.get_response(request)

    @staticmethod
    def _chunked_body(request):
        meta = request.META
        encoding = meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        if "chunked" not in encoding or meta.get("CONTENT_LENGTH"):
            return None
        if not meta.get("wsgi.input_terminated"):
            return _bad_request(
                request, 411, "length_required", gettext("Send the body with a Content-Length.")
            )
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = meta["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            return _bad_request(
                request, 413, "too_large", gettext("The request body is too large.")
            )
        meta["CONTENT_LENGTH"] = str(len(body))
        request._stream = LimitedStream(io.BytesIO(body), len(body))
        return None
