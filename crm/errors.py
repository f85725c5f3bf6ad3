"""The one error format of the API: `{"error": {"code", "message", "fields"}}`.

Its own module, below `crm.api` and `crm.inputs`, because both answer in it: the input
boundary middleware refuses a query string before any view runs, the API's exception handler
renders everything else.
"""

from __future__ import annotations


def error_body(code: str, message: str, fields: dict | None = None, **extra) -> dict:
    """`fields` maps a field path (`lines[0].quantity`) to its messages."""
    return {"error": {"code": code, "message": str(message), "fields": fields or {}, **extra}}
