"""The POS payloads and the segment rule tree, fuzzed as JSON through the API and the page.

Receipts, bulk receipts, returns, products and customers start from a valid payload and have
hostile values put at random paths (numbers at and past every column's range, wrong types,
NUL and lone surrogates, deep nesting); rule trees are generated from the field schema itself,
with valid and hostile values, and sent through the builder page and the API as each role.
"""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from campaigns.services.segments import FIELDS, GROUP_OPS, validate_rules

from .conftest import ROLES, examples
from .harness import Probe
from .hostile import deep, hostile_date, hostile_json_value, hostile_number, hostile_text

pytestmark = [pytest.mark.django_db]


def _receipt(pos_id: str = "F-1") -> dict:
    return {
        "pos_receipt_id": pos_id,
        "purchased_at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(),
        "phone": "+79161234567",
        "lines": [
            {"sku": "DRESS-001", "quantity": "1", "unit_price": "4990.00", "unit_cost": "10"},
            {"sku": "NEW-1", "name": "Шарф", "quantity": "2", "unit_price": "990.00"},
        ],
        "total": "6970.00",
    }


def _payloads() -> dict[str, tuple[str, str, dict]]:
    return {
        "receipt": ("POST", "/api/v1/receipts/", _receipt()),
        "bulk": ("POST", "/api/v1/receipts/bulk/", {"receipts": [_receipt("F-2"), _receipt()]}),
        "return": (
            "POST",
            "/api/v1/returns/",
            {
                "pos_return_id": "RT-1",
                "pos_receipt_id": "R-1",
                "returned_at": dt.datetime.now(dt.UTC).isoformat(),
                "lines": [{"line_no": 1, "quantity": "1"}],
            },
        ),
        "products": (
            "PUT",
            "/api/v1/products/bulk/",
            {"products": [{"sku": "P-1", "name": "Пальто", "price": "100", "cost": "50"}]},
        ),
        "customer": (
            "POST",
            "/api/v1/customers/",
            {"surname": "Новикова", "phones": ["+79160000001"], "consent": {"sms": True}},
        ),
    }


def _paths(value, prefix=()):
    """Every path into a JSON document (dict keys and list indexes)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _put(document, path, value):
    if not path:
        return value
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


@st.composite
def mutated(draw, base: dict):
    document = copy.deepcopy(base)
    paths = list(_paths(document))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths))
        try:
            document = _put(document, path, draw(hostile_json_value()))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced the container
        paths = list(_paths(document))
    return document


def _json(document) -> str:
    # ensure_ascii keeps lone surrogates as \\ud800 escapes, as a client's JSON would carry them.
    return json.dumps(document, ensure_ascii=True, allow_nan=True)


def _pos_client(world) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {world.pos_key.raw}")
    return client


def test_pos_payloads_with_hostile_values(world):
    probe = Probe(_pos_client(world))
    for name, (method, path, base) in _payloads().items():
        # Every path of the payload meets every one of these values once.
        for target in list(_paths(base))[1:]:
            for value in ("a\x00b", "\ud800", 10**400, "1e999999", -1, None, [], deep(60)):
                document = _put(copy.deepcopy(base), target, value)
                probe.send(method, path, json_body=_json(document), label=f"sweep {name}")

        def body(document, method=method, path=path, name=name):
            probe.send(method, path, json_body=_json(document), label=name)

        @given(document=mutated(base))
        @settings(settings.get_profile("fuzz"), max_examples=examples(40))
        def check(document):
            body(document)

        check()
    # Valid shapes at the edges of every column: the answer is a 2xx or a 400, never more.
    edges = _receipt("EDGE")
    edges["lines"] = [{"sku": "DRESS-001", "quantity": "100000", "unit_price": "0.01"}]
    edges["lines"][0]["unit_cost"] = "1000000000"
    edges["total"] = "1000.00"
    probe.send("POST", "/api/v1/receipts/", json_body=_json(edges), label="edge")
    print(f"{probe.sent} requests")
    assert not probe.failures, "\n".join(probe.failures[:40])


def test_json_bodies_that_are_not_objects(world):
    probe = Probe(_pos_client(world))
    bodies = ["", "null", "[]", "1e999999", "NaN", '"\\u0000"', "[" * 50_000, '{"a":' * 3000]
    for _name, (method, path, _base) in _payloads().items():
        for text in bodies:
            probe.send(method, path, json_body=text, label="shape")
    assert not probe.failures, "\n".join(probe.failures[:40])


# --- Segment rule trees --------------------------------------------------------------------------


def _valid_value(spec, kind: str) -> st.SearchStrategy:
    """A value of the kind an operator takes, within the field's limits (strings included)."""
    low, high = spec.limits
    return {
        "choices": st.lists(st.sampled_from(spec.choices or ("x",)), min_size=1, max_size=3),
        "ids": st.lists(st.integers(min_value=1, max_value=2**63 - 1), min_size=1, max_size=3),
        "int": st.integers(min_value=int(low), max_value=int(high)),
        "number": st.one_of(
            st.floats(min_value=float(low), max_value=float(high)),
            st.integers(min_value=int(low), max_value=int(high)),
        ),
        "date": st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31)).map(str),
        "text": st.text(min_size=1, max_size=200).filter(lambda t: "\x00" not in t),
        "channel": st.sampled_from(("email", "sms", "messenger", "phone")),
        "holiday": st.sampled_from(("01-07", "03-08", "12-31")),
        "json": st.one_of(st.text(max_size=20), st.integers(-(10**15), 10**15), st.booleans()),
        "none": st.none(),
    }[kind]


def _condition() -> st.SearchStrategy[dict]:
    def for_field(name: str):
        spec = FIELDS[name]
        ops = list(spec.ops)
        valid = st.one_of(
            [
                st.fixed_dictionaries(
                    {
                        "field": st.just(name),
                        "op": st.just(op),
                        "value": _valid_value(spec, kind),
                        **{
                            key: st.just("size")
                            if extra == "key"
                            else st.integers(min_value=1, max_value=3650)
                            for key, extra in spec.extra
                        },
                    }
                )
                for op, kind in spec.ops.items()
            ]
        )
        extras = {
            key: st.one_of(
                st.integers(min_value=-1, max_value=4000), hostile_json_value(), st.just("size")
            )
            for key, _kind in spec.extra
        }
        return valid | st.fixed_dictionaries(
            {
                "field": st.just(name),
                "op": st.one_of(st.sampled_from(ops), hostile_text()),
                "value": st.one_of(
                    hostile_json_value(),
                    st.lists(st.one_of(st.sampled_from(spec.choices or ("x",)), hostile_number())),
                    st.integers(min_value=-10, max_value=6000),
                    hostile_date(),
                ),
                **extras,
            }
        )

    return st.one_of([for_field(name) for name in sorted(FIELDS)])


def rule_trees() -> st.SearchStrategy:
    return st.recursive(
        st.one_of(_condition(), hostile_json_value()),
        lambda children: st.fixed_dictionaries(
            {
                "op": st.one_of(st.sampled_from(GROUP_OPS), hostile_text()),
                "rules": st.one_of(st.lists(children, max_size=4), hostile_json_value()),
            }
        ),
        max_leaves=8,
    )


def test_segment_rule_trees_through_the_page_and_the_api(world):
    failures: list[str] = []
    probe = Probe(world.client("admin"), failures=failures)
    accepted = 0

    def body(tree, role):
        nonlocal accepted
        text = _json(tree)
        probe.client = world.client(role)
        page = probe.send("POST", "/campaigns/segments/count/", form={"rules": text}, label=role)
        probe.send(
            "POST", "/campaigns/segments/new/", form={"name": "F", "rules": text}, label=role
        )
        api = probe.send(
            "POST",
            "/api/v1/campaigns/segments/count/",
            json_body=_json({"rules": tree}),
            label=role,
        )
        if role == "admin" and not validate_rules(tree):
            # A tree the validator passes must compile and count.
            accepted += 1
            if page.status_code != 200 or api.status_code != 200:
                failures.append(f"valid tree refused {page.status_code}/{api.status_code}: {text}")

    @given(tree=rule_trees(), role=st.sampled_from(ROLES))
    @settings(settings.get_profile("fuzz"), max_examples=examples(150))
    def check(tree, role):
        body(tree, role)

    check()
    # Deep nesting, past MAX_DEPTH and past the parser.
    body({"op": "and", "rules": deep(30, {"op": "or", "rules": []})}, "admin")
    nested = '{"op":"and","rules":' * 5000 + "[]" + "}" * 5000
    probe.client = world.client("admin")
    probe.send("POST", "/campaigns/segments/count/", form={"rules": nested}, label="deep")
    probe.send("POST", "/api/v1/campaigns/segments/count/", json_body=f'{{"rules": {nested}}}')
    print(f"{probe.sent} requests, {accepted} valid trees")
    assert not failures, "\n".join(failures[:40])


def test_segment_conditions_of_every_field_and_operator_at_their_edges(world):
    """Each field and operator with each edge value: valid ones count, invalid ones are 400s."""
    probe = Probe(world.client("admin"))
    values = [
        0,
        -1,
        150,
        151,
        366,
        5000,
        100_000,
        2**63,
        1e308,
        "1e999999",
        "NaN",
        "a\x00b",
        "\ud800",
        "0001-01-01",
        "9999-12-31",
        "2025-02-30",
        ["S"],
        [2**63],
        [1],
        "01-07",
        True,
        None,
    ]
    for name, spec in sorted(FIELDS.items()):
        for op in spec.ops:
            for value in values:
                rule = {"field": name, "op": op, "value": value}
                for key, _kind in spec.extra:
                    rule[key] = "size" if key == "key" else 30
                tree = {"op": "and", "rules": [rule]}
                answer = probe.send(
                    "POST",
                    "/api/v1/campaigns/segments/count/",
                    json_body=_json({"rules": tree}),
                    label="edge",
                )
                expected = 400 if validate_rules(tree) else 200
                if answer.status_code != expected:
                    probe.failures.append(f"{answer.status_code} != {expected}: {rule!r}"[:300])
    print(f"{probe.sent} requests")
    assert not probe.failures, "\n".join(probe.failures[:40])
