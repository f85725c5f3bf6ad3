"""schemathesis over every operation of the published OpenAPI, with all of its checks.

Not only "no 5xx": status codes, content types, headers and bodies must be the ones the schema
declares, invalid data must be refused and valid data accepted. It runs as a till (Api-Key)
and as an administrator (Token), in-process against the WSGI app, fixed seed, bounded examples.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from crm.api_tokens import user_token_issue
from crm.wsgi import application

from .conftest import examples

pytestmark = pytest.mark.django_db

MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

# Operations whose validity depends on more than each value alone, which JSON Schema cannot
# say: schemathesis's "valid data is accepted" check would flag their documented 400s. Every
# other check runs on them; on all other operations every check runs.
CROSS_FIELD_RULES = {
    "GET /api/v1/customers/lookup/": "exactly one of phone or card",
    "GET /api/v1/analytics/dashboard/": "date_from not after date_to, at most ten years",
    "POST /api/v1/campaigns/segments/count/": "the rule tree's own grammar",
    "POST /api/v1/receipts/": "lines add up to the total; known SKUs or a name",
    "POST /api/v1/receipts/bulk/": "as one receipt",
    "POST /api/v1/returns/": "names a stored receipt and its lines",
    "PUT /api/v1/products/bulk/": "each SKU once",
    "POST /api/v1/customers/": "phone and card not already taken",
    "PATCH /api/v1/customers/{id}/": "phone and card not already taken",
    "POST /api/v1/customers/merge/": "two or more distinct visible cards; known field names",
    "POST /api/v1/loyalty/calculate/": "a known customer; lines add up",
    # An opaque cursor is valid only if the API handed it out.
    "GET /api/v1/customers/": "cursor handed out by the API",
    "GET /api/v1/customers/{id}/receipts/": "cursor handed out by the API",
    "GET /api/v1/customers/{id}/contacts/": "cursor handed out by the API",
}


@pytest.fixture
def wsgi_app():
    # Keep the test's connection (and its transaction) across requests, as the test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_every_operation_holds_the_published_contract(wsgi_app, world):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    _row, token = user_token_issue(user=world.users["admin"])
    credentials = {
        "till": {"Authorization": f"Api-Key {world.pos_key.raw}"},
        "admin": {"Authorization": f"Token {token}"},
    }
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    failures: list[str] = []
    for operation in operations:
        for who, headers in credentials.items():
            for mode in MODES:
                _run(operation, who, headers, mode, failures)
    assert not failures, "\n\n".join(failures[:200])


def _run(operation, who: str, headers: dict, mode, failures: list[str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples(6),
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        response = case.call(headers=headers)
        excluded = [positive_data_acceptance] if operation.label in CROSS_FIELD_RULES else []
        try:
            case.validate_response(response, headers=headers, excluded_checks=excluded)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below
            failures.append(
                f"{who} {mode.value} {operation.label} -> {response.status_code}: {str(exc)[:500]}"
            )

    check()
