"""Issue 13: each cause of a server error, wiped card or failed refresh found by hand, pinned.

The property-based suite under tests/fuzz/ proves the general rule; these tests name the causes,
so that a regression says which one came back.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
from decimal import Decimal

import pytest
from django.test import Client

from analytics.models import ClassThresholds, CustomerMetrics
from analytics.tasks import refresh_customer_metrics
from campaigns.services.segments import validate_rules
from customers.models import Customer
from sales.models import Receipt, Return
from tests.conftest import key_client, receipt_payload
from tests.factories import CustomerFactory

DB_WORDS = ("numeric field overflow", "DETAIL", "psycopg", "ProgrammingError", "DataError")


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def pos_a(store_a):
    from sales.apikeys import pos_key_issue

    return key_client(pos_key_issue(store=store_a, name="till").raw)


def _overflowing_line() -> dict:
    # Each field within its own limit; quantity x unit cost is 10^14, past numeric(14, 2).
    return {
        "sku": "BIG-1",
        "name": "Weighed",
        "quantity": "100000",
        "unit_price": "0.01",
        "unit_cost": "1000000000",
    }


# 1. Money overflow at the till -------------------------------------------------------------


def test_line_whose_cost_product_overflows_is_a_400_not_a_500(pos_a):
    response = pos_a.post(
        "/api/v1/receipts/",
        receipt_payload(lines=[_overflowing_line()], total="1000.00"),
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "lines[0].quantity" in response.json()["error"]["fields"]
    assert not Receipt.objects.exists()


def test_line_whose_price_product_overflows_is_a_400(pos_a):
    line = {"sku": "BIG-2", "name": "x", "quantity": "100000", "unit_price": "1000000000"}
    response = pos_a.post(
        "/api/v1/receipts/",
        receipt_payload(lines=[line], total="999999999999.99"),
        format="json",
    )
    assert response.status_code == 400
    assert "lines[0].quantity" in response.json()["error"]["fields"]


def test_catalogue_cost_that_overflows_with_the_quantity_is_refused(pos_a):
    from tests.factories import ProductFactory

    ProductFactory(sku="COSTLY", cost=Decimal("1000000000"))
    line = {"sku": "COSTLY", "quantity": "100000", "unit_price": "0.01"}
    response = pos_a.post(
        "/api/v1/receipts/", receipt_payload(lines=[line], total="1000.00"), format="json"
    )
    assert response.status_code == 400
    assert "lines[0]" in response.json()["error"]["fields"]
    bulk = pos_a.post(
        "/api/v1/receipts/bulk/",
        {"receipts": [receipt_payload("B-1", lines=[line], total="1000.00")]},
        format="json",
    )
    assert bulk.status_code == 200
    item = bulk.json()["results"][0]
    assert item["status"] == "error" and "lines[0]" in item["error"]["fields"]
    assert not Receipt.objects.exists()


def test_bulk_item_error_never_carries_database_text(pos_a):
    response = pos_a.post(
        "/api/v1/receipts/bulk/",
        {"receipts": [receipt_payload("B-1", lines=[_overflowing_line()], total="1000.00")]},
        format="json",
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert response.json()["results"][0]["status"] == "error"
    assert not any(word in text for word in DB_WORDS), text


def test_api_last_resort_maps_a_database_error_to_a_generic_400(caplog):
    """Should validation ever miss a case, the client still sees no driver text."""
    from django.db import DataError
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    class Failing(APIView):
        permission_classes: list = []
        authentication_classes: list = []

        def get(self, request):
            raise DataError("numeric field overflow DETAIL: A field with precision 14 ...")

    with caplog.at_level(logging.ERROR, logger="crm.api"):
        response = Failing.as_view()(APIRequestFactory().get("/x"))
    assert response.status_code == 400
    body = json.dumps(response.data)
    assert "overflow" not in body and "precision" not in body
    assert response.data["error"]["fields"]["non_field_errors"]
    assert any("database refused" in r.getMessage() for r in caplog.records)


def test_bulk_one_by_one_fallback_hides_database_text(admin_user, store_a, caplog):
    """The per-receipt retry of a failed set insert reports a generic field error."""
    from django.db import connection

    from sales.ingest.receipts import BulkResult, _insert_one_by_one

    data = {
        "pos_receipt_id": "FB-1",
        "purchased_at": dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        "customer_id": None,
        "phone": "",
        "card": "",
        "payment_method": "card",
        "channel": "store",
        "lines": [
            {
                "sku": "FB",
                "name": "x",
                "category": "",
                "quantity": Decimal("1"),
                "unit_price": Decimal("10"),
                "discount": Decimal("0"),
                "unit_cost": None,
            }
        ],
        "total": Decimal("10.00"),
    }
    with connection.cursor() as cursor:
        # A constraint the validation does not know about stands in for any database refusal.
        cursor.execute(
            "ALTER TABLE sales_receipt ADD CONSTRAINT t13_refuse CHECK (pos_receipt_id <> 'FB-1')"
        )
    results = {0: BulkResult(index=0, pos_receipt_id="FB-1")}
    with caplog.at_level(logging.ERROR, logger="sales.ingest.receipts"):
        _insert_one_by_one(admin_user, store_a, [(0, data, None, [])], results)
    error = results[0].error
    assert results[0].status == "error"
    assert "t13_refuse" not in json.dumps(error) and "violates" not in json.dumps(error)
    assert error["fields"]["non_field_errors"]
    assert any("FB-1" in r.getMessage() for r in caplog.records)


# 2. Dashboard dates at the calendar's edges -------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "0001-01-01"},
        {"date_from": "9999-12-01", "date_to": "9999-12-31"},
        {"date_from": "0001-01-01", "date_to": "0001-01-05"},
    ],
)
def test_dashboard_edge_dates_are_refused_not_a_500(client, admin_user, params):
    client.force_login(admin_user)
    page = client.get("/analytics/", params)
    assert page.status_code == 200
    assert page.context["form"].errors
    assert client.get("/analytics/csv/kpis/", params).status_code == 200
    api = client.get("/api/v1/analytics/dashboard/", params)
    assert api.status_code == 400
    assert (
        "date_from" in api.json()["error"]["fields"] or "date_to" in api.json()["error"]["fields"]
    )


# 3. Cursors -----------------------------------------------------------------------------------


def _cursor(values) -> str:
    raw = json.dumps(values)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("name", [{"a": 1}, "x", 1]),
        ("name", [1.5, "x", 1]),
        ("name", [True, "x", 1]),
        ("name", ["\x00", "x", 1]),
        ("name", ["a", "b", True]),
        ("name", ["a", "b", 2**70]),
        ("created", ["2025-01-01T00:00:00+99:00", 1]),
        ("created", ["0001-01-01T00:00:00+23:00", 1]),
        ("created", [{"x": 1}, 1]),
    ],
)
def test_forged_web_list_cursor_is_a_400_with_a_message(client, admin_user, anna, sort, values):
    client.force_login(admin_user)
    for direction in ("after", "before"):
        response = client.get("/customers/", {"sort": sort, direction: _cursor(values)})
        assert response.status_code == 400
        assert "This page link is damaged" in response.content.decode()


@pytest.mark.parametrize("position", ["abc", "\x00", "-5", "99999999999999999999999", "1.5", "①"])
def test_forged_api_cursor_is_a_400(client, admin_user, anna, position):
    from urllib.parse import urlencode

    client.force_login(admin_user)
    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    response = client.get("/api/v1/customers/", {"cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["error"]["fields"]


def test_forged_receipts_cursor_is_a_400(client, admin_user, anna):
    from urllib.parse import urlencode

    client.force_login(admin_user)
    for position in ("yesterday", "0001-01-01 00:00:00+23:59", "2025-01-01T00:00:00+99:00"):
        cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
        response = client.get(f"/api/v1/customers/{anna.pk}/receipts/", {"cursor": cursor})
        assert response.status_code == 400, position


def test_api_cursor_that_is_not_base64_is_a_400(client, admin_user, anna):
    client.force_login(admin_user)
    response = client.get("/api/v1/customers/", {"cursor": "%%%not-base64"})
    assert response.status_code == 400


def test_real_api_cursor_still_pages(client, admin_user, store_a):
    for index in range(3):
        CustomerFactory(surname=f"C{index}", home_store=store_a)
    client.force_login(admin_user)
    first = client.get("/api/v1/customers/", {"page_size": 2}).json()
    second = client.get(first["next"])
    assert second.status_code == 200
    assert len(second.json()["results"]) == 1


# 4. NUL bytes in query parameters -------------------------------------------------------------


def test_nul_in_duplicates_helper_is_a_400(client, admin_user):
    client.force_login(admin_user)
    for params in ({"card_number": "12\x0034"}, {"email": "a\x00@b.ru"}):
        response = client.get("/customers/new/duplicates/", params)
        assert response.status_code == 400


def test_nul_in_lookup_is_a_400_in_the_api_format(pos_a):
    response = pos_a.get("/api/v1/customers/lookup/?card=%00")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_nul_in_a_parameter_name_is_a_400(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/customers/?a%00b=1").status_code == 400


# 5. Segment rules that passed validation and failed in SQL ------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        {"field": "age", "op": "gte", "value": 5000},
        {"field": "age", "op": "lte", "value": 151},
        {"field": "city", "op": "eq", "value": "Мо\x00сква"},
        {"field": "city", "op": "contains", "value": "\ud800"},
        {"field": "custom_field", "key": "size", "op": "eq", "value": "4\x002"},
        {"field": "custom_field", "key": "size", "op": "gte", "value": float("nan")},
        {"field": "custom_field", "key": "size", "op": "gte", "value": float("inf")},
        {"field": "historical_lcv", "op": "gte", "value": float("inf")},
        {"field": "historical_lcv", "op": "gte", "value": "1e999999"},
        {"field": "predicted_clv", "op": "lte", "value": float("nan")},
        {"field": "p_alive", "op": "gte", "value": 2},
        {"field": "card_created", "op": "after", "value": "0001-01-01"},
        {"field": "no_purchase_since", "op": "since", "value": "9999-12-31"},
        {"field": "tag", "op": "any", "value": [2**70]},
        {"field": ["age"], "op": "gte", "value": 1},
        {"field": "age", "op": {"x": 1}, "value": 1},
        {"field": "custom_field", "key": "size\n", "op": "is_set"},
    ],
)
def test_segment_rule_out_of_range_is_a_validation_error(rule):
    assert validate_rules({"op": "and", "rules": [rule]})


def test_segment_page_and_api_refuse_hostile_rules(client, admin_user):
    client.force_login(admin_user)
    # As the page's builder posts it: JSON text, where Python reads NaN and 1e999999.
    for text in (
        '{"op":"and","rules":[{"field":"historical_lcv","op":"gte","value":1e999999}]}',
        '{"op":"and","rules":[{"field":"historical_lcv","op":"gte","value":NaN}]}',
        '{"op":"and","rules":[{"field":"age","op":"gte","value":5000}]}',
        '{"op":"and","rules":[{"field":"city","op":"eq","value":"a\\u0000b"}]}',
        "[" * 100_000,
    ):
        response = client.post("/campaigns/segments/count/", {"rules": text})
        assert response.status_code < 500, text[:80]
        created = client.post("/campaigns/segments/new/", {"name": "S", "rules": text})
        assert created.status_code in (200, 400), text[:80]
    api = client.post(
        "/api/v1/campaigns/segments/count/",
        {"rules": {"op": "and", "rules": [{"field": "age", "op": "gte", "value": 5000}]}},
        content_type="application/json",
    )
    assert api.status_code == 400
    api = client.post(
        "/api/v1/campaigns/segments/count/",
        '{"rules": {"op": "and", "rules": [{"field": "city", "op": "eq", "value": "\\ud800"}]}}',
        content_type="application/json",
    )
    assert api.status_code == 400


# 7. The per-receipt refresh on a fresh install ------------------------------------------------


def test_fresh_install_receipt_refresh_succeeds_and_the_card_shows_figures(
    client, admin_user, store_a, pos_a, django_capture_on_commit_callbacks, settings
):
    import redis

    assert not ClassThresholds.objects.exists()
    assert not CustomerMetrics.objects.exists()
    customer = CustomerFactory(home_store=store_a, phone_number="+79161112233")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    line = {"sku": "D-1", "name": "Dress", "quantity": "1", "unit_price": "5000.00"}
    line["unit_cost"] = "3000.00"
    with django_capture_on_commit_callbacks(execute=True):
        response = pos_a.post(
            "/api/v1/receipts/",
            receipt_payload(phone="+79161112233", lines=[line], total="5000.00"),
            format="json",
        )
    assert response.status_code == 201, response.content
    published = [json.loads(m) for m in broker.lrange("celery", 0, -1)]
    broker.delete("celery")
    tasks = [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in published]
    assert tasks == [("analytics.tasks.refresh_customer_metrics", f"({customer.pk},)")]
    # The task exactly as a worker runs it; a failure is raised here.
    result = refresh_customer_metrics.apply(args=[customer.pk], throw=True)
    assert result.successful()
    metrics = CustomerMetrics.objects.get(customer=customer)
    assert metrics.receipts == 1
    assert metrics.revenue == Decimal("5000.00")
    assert metrics.historical_lcv == Decimal("2000.00")
    assert metrics.recency_score is None
    client.force_login(admin_user)
    page = client.get(f"/customers/{customer.pk}/")
    assert page.status_code == 200
    assert page.context["metrics"].historical_lcv == Decimal("2000.00")
    assert "LCV" in page.content.decode()


# 8. Smaller -------------------------------------------------------------------------------------


def test_return_dated_before_its_purchase_is_refused(pos_a):
    bought = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    assert (
        pos_a.post(
            "/api/v1/receipts/", receipt_payload(purchased_at=bought.isoformat()), format="json"
        ).status_code
        == 201
    )
    response = pos_a.post(
        "/api/v1/returns/",
        {
            "pos_return_id": "RT-1",
            "pos_receipt_id": "R-1",
            "returned_at": (bought - dt.timedelta(days=1)).isoformat(),
            "lines": [{"line_no": 1, "quantity": "1"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "returned_at" in response.json()["error"]["fields"]
    assert not Return.objects.exists()


def _chunked(body: bytes, content_type: str = "application/json") -> dict:
    return {
        "CONTENT_LENGTH": "",
        "CONTENT_TYPE": content_type,
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
    }


def test_chunked_body_de_chunked_by_the_server_is_read(pos_a):
    body = json.dumps(receipt_payload()).encode()
    response = pos_a.generic(
        "POST",
        "/api/v1/receipts/",
        content_type="application/json",
        **_chunked(body),
        **{"wsgi.input_terminated": True},
    )
    assert response.status_code == 201, response.content
    assert Receipt.objects.filter(pos_receipt_id="R-1").exists()


def test_chunked_body_the_server_cannot_delimit_is_411(pos_a):
    body = json.dumps(receipt_payload()).encode()
    response = pos_a.generic(
        "POST", "/api/v1/receipts/", content_type="application/json", **_chunked(body)
    )
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"


def test_chunked_body_past_the_limit_is_413(pos_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps(receipt_payload(pos_receipt_id="x" * 2000)).encode()
    response = pos_a.generic(
        "POST",
        "/api/v1/receipts/",
        content_type="application/json",
        **_chunked(body),
        **{"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_chunked_form_post_is_read_on_pages(admin_user, anna):
    client = Client()
    client.force_login(admin_user)
    body = b"city=%D0%A2%D1%83%D0%BB%D0%B0"
    response = client.generic(
        "POST",
        f"/customers/{anna.pk}/edit/",
        content_type="application/x-www-form-urlencoded",
        **_chunked(body, "application/x-www-form-urlencoded"),
        **{"wsgi.input_terminated": True},
    )
    assert response.status_code == 302
    assert Customer.objects.get(pk=anna.pk).city == "Тула"
