"""schemathesis over the loyalty endpoint and the receipt that carries points."""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.factories import CustomerFactory
from tests.sales.api.test_schema import CHECKS, wsgi_app  # noqa: F401  (fixture)

from .conftest import give_points

pytestmark = pytest.mark.django_db

PATHS = ("/api/v1/loyalty/", "/api/v1/receipts/", "/api/v1/customers/lookup/")


def test_schema_documents_the_loyalty_endpoint(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]

    operation = paths["/api/v1/loyalty/calculate/"]["post"]
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
    receipt = paths["/api/v1/receipts/"]["post"]["requestBody"]["content"]["application/json"]
    assert "points_redeemed" in str(receipt) or receipt["schema"]["$ref"]


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_loyalty_endpoints_hold_their_contract(wsgi_app, pos_key, store_a, catalogue, mode):  # noqa: F811
    customer = CustomerFactory(
        home_store=store_a, card_number="7700001", phone_number="+79161234567"
    )
    give_points(customer, "1000")
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    headers = {"Authorization": f"Api-Key {pos_key.raw}"}
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.path.startswith(PATHS)
    ]
    assert {op.path for op in operations} >= {"/api/v1/loyalty/calculate/", "/api/v1/receipts/"}

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        check()
