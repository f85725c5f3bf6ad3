"""customers stands below sales and analytics: what they add to its pages comes through
`customers.extensions`, filled in their `AppConfig.ready()` (no import from customers upward)."""

from __future__ import annotations

import ast
import io
from pathlib import Path

from django.test import RequestFactory
from openpyxl import load_workbook

from customers import extensions
from customers.forms import CustomerListForm
from customers.privacy.subject_access import subject_access_xlsx
from tests.factories import CustomerFactory

HIGHER = ("sales", "loyalty", "analytics", "campaigns", "demo")
# Store moves to crm in its own step (crm.models.Store); until then customers names it here only.
STORE_ONLY = {"sales.models": {"Store"}}


def _upward_imports() -> list[str]:
    root = Path(__file__).resolve().parents[2] / "customers"
    found = []
    for path in root.rglob("*.py"):
        if "migrations" in path.parts or "imports" in path.parts or path.name == "merge.py":
            continue  # customers/imports and the merge are other parts of the layering step
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in HIGHER:
                    names = {alias.name for alias in node.names}
                    if not names <= STORE_ONLY.get(node.module, set()):
                        found.append(f"{path.relative_to(root.parent)}: {node.module}")
            elif isinstance(node, ast.Import):
                found += [
                    f"{path.relative_to(root.parent)}: {a.name}"
                    for a in node.names
                    if a.name.split(".")[0] in HIGHER
                ]
    return found


def test_customers_imports_no_app_above_it():
    assert _upward_imports() == []


def test_higher_apps_fill_the_registries_at_start_up():
    assert extensions.card_partial("purchases") is not None
    assert extensions.card_partial(None) is None
    assert extensions.card_partial("contacts") is None
    assert extensions.purchase_rows().model._meta.label == "sales.Receipt"
    assert [v for v, _label in extensions.filter_choices("value_class")][0] == "VIP"
    assert "champions" in [v for v, _label in extensions.filter_choices("rfm_segment")]
    assert extensions.filter_choices("no such filter") == []


def test_list_form_offers_and_checks_the_registered_choices(db):
    form = CustomerListForm({"value_class": "VIP", "rfm_segment": "champions"})
    assert form.is_valid(), form.errors
    form = CustomerListForm({"value_class": "Z"})
    assert not form.is_valid()
    assert "value_class" in form.errors


def test_card_sections_add_the_purchase_history(db, django_assert_num_queries):
    customer = CustomerFactory()
    request = RequestFactory().get("/")
    with django_assert_num_queries(4):  # receipts, lines' margin, returns, favourite categories
        context = extensions.card_sections(request, customer)
    assert context["totals"].receipts == 0
    assert list(context["receipts"]) == []


def test_subject_access_file_keeps_the_sheets_in_their_order(db):
    content = subject_access_xlsx(customer=CustomerFactory())
    titles = [s.title for s in load_workbook(io.BytesIO(content), read_only=True).worksheets]
    # In Russian: card, custom fields, consents, then sales' purchases and returns, then the rest.
    assert titles[4:6] == ["Покупки", "Возвраты"], titles
    assert len(titles) == 9
