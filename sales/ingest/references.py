"""What a till's receipt refers to: customers, products and categories, resolved in sets.

A few set queries whatever the number of receipts: customers are found as a till finds them
(exact id, phone or card, among those the caller may look up), unknown SKUs that carry a name
are added to the catalogue with their category path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from customers.access import lookup_customers, lookup_customers_sql
from customers.duplicates.models import MergedAlias
from customers.imports.sql import phone_owners
from customers.models import CustomerPhone

from ..models import Category, Product
from ..services import LineInput, receipt_capacity_errors


def category_path_parts(path: str) -> list[str]:
    return [part.strip() for part in path.split("/") if part.strip()]


def categories_for_paths(paths: Iterable[str]) -> dict[str, Category]:
    """Category per normalised path ("A/B"), creating missing nodes of the tree."""
    wanted: dict[str, list[str]] = {}
    for path in paths:
        parts = category_path_parts(path)
        for depth in range(1, len(parts) + 1):
            wanted["/".join(parts[:depth])] = parts[:depth]
    if not wanted:
        return {}
    found = {c.path: c for c in Category.objects.filter(path__in=wanted)}
    for path, parts in sorted(wanted.items(), key=lambda item: len(item[1])):
        if path not in found:
            parent = found["/".join(parts[:-1])] if len(parts) > 1 else None
            # get_or_create survives a concurrent request creating the same node.
            found[path], _created = Category.objects.get_or_create(parent=parent, name=parts[-1])
    return found


def category_for(categories: dict[str, Category], path: str | None) -> Category | None:
    """The category of a posted path among those `categories_for_paths` returned."""
    return categories.get("/".join(category_path_parts(path))) if path else None


def products_for_lines(lines: Iterable[dict[str, Any]]) -> dict[str, Product]:
    """Products by SKU for these lines; unknown SKUs that carry a name are created."""
    lines = list(lines)
    skus = {line["sku"] for line in lines}
    found = {p.sku: p for p in Product.objects.filter(sku__in=skus).only("id", "sku", "cost")}
    to_create: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line["sku"] not in found and line.get("name") and line["sku"] not in to_create:
            to_create[line["sku"]] = line
    if to_create:
        categories = categories_for_paths(
            line["category"] for line in to_create.values() if line.get("category")
        )
        Product.objects.bulk_create(
            [
                Product(
                    sku=sku,
                    name=line["name"],
                    category=category_for(categories, line.get("category")),
                    price=line["unit_price"],
                    cost=line.get("unit_cost") or Decimal(0),
                )
                for sku, line in to_create.items()
            ],
            ignore_conflicts=True,
        )
        # Re-read: with ignore_conflicts PostgreSQL returns no ids, and a racing request may
        # have created some of them first.
        found.update(
            {p.sku: p for p in Product.objects.filter(sku__in=to_create).only("id", "sku", "cost")}
        )
    return found


@dataclass
class CustomerIndex:
    by_id: dict[int, int] = field(default_factory=dict)
    by_phone: dict[str, int] = field(default_factory=dict)
    by_card: dict[str, int] = field(default_factory=dict)

    def resolve(self, data: dict[str, Any]) -> tuple[int | None, dict[str, list[str]]]:
        if data.get("customer_id"):
            found = self.by_id.get(data["customer_id"])
        elif data.get("phone"):
            found = self.by_phone.get(data["phone"])
        elif data.get("card"):
            found = self.by_card.get(data["card"])
        else:
            return None, {}
        return found, ({} if found is not None else customer_ref_errors(data))


def customer_ref_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """The field error of a receipt whose customer reference found nobody."""
    if data.get("customer_id"):
        return {"customer_id": [_("No such customer.")]}
    if data.get("phone"):
        return {"phone": [_("No customer has this phone; create the card first.")]}
    if data.get("card"):
        return {"card": [_("No customer has this card; create the card first.")]}
    return {}


# How `customer_ref_sql` finds one customer: each ends in a condition the scope is added to.
_REF_SQL = {
    "customer_id": "SELECT c.id FROM customers_customer c WHERE c.id = %s",
    "phone": (
        "SELECT p.customer_id FROM customers_customerphone p"
        " JOIN customers_customer c ON c.id = p.customer_id WHERE p.number = %s"
    ),
    "card": "SELECT c.id FROM customers_customer c WHERE c.card_number = %s",
    "merged_card": (
        "SELECT a.survivor_id FROM customers_mergedalias a"
        " JOIN customers_customer c ON c.id = a.survivor_id WHERE a.old_card_number = %s"
    ),
}


def customer_ref_sql(user, data: dict[str, Any]) -> tuple[str, list]:
    """One receipt's customer reference as a scalar subquery (the customer's id, or NULL), found
    as `customer_index` finds it, for a caller that reads the customer inside a statement of its
    own (the till's calculation: one round trip). A test holds the two equal."""
    scope, params = lookup_customers_sql(user, "c")

    def scoped(name: str, value) -> tuple[str, list]:
        # Only customers.access' own condition goes into the text; values are parameters.
        return f"({_REF_SQL[name]} AND {scope})", [value, *params]  # noqa: S608

    if data.get("customer_id"):
        return scoped("customer_id", data["customer_id"])
    if data.get("phone"):
        return scoped("phone", data["phone"])
    if data.get("card"):
        # A card merged into another one still finds its owner (customers.duplicates).
        (own, own_params), (merged, merged_params) = (
            scoped("card", data["card"]),
            scoped("merged_card", data["card"]),
        )
        return f"coalesce({own}, {merged})", [*own_params, *merged_params]
    return "NULL::bigint", []


# Up to this many phones a plain `IN` finds them on the btree index; more go through a join.
FEW_PHONES = 20


def customer_index(user, items: Iterable[dict[str, Any]]) -> CustomerIndex:
    """Customers named by these receipts, found as a till finds them: exact id, phone or card."""
    items = list(items)
    ids = {i["customer_id"] for i in items if i.get("customer_id")}
    phones = {i["phone"] for i in items if i.get("phone")}
    cards = {i["card"] for i in items if i.get("card")}
    scope = lookup_customers(user)
    index = CustomerIndex()
    if ids:
        index.by_id = {pk: pk for pk in scope.filter(pk__in=ids).values_list("pk", flat=True)}
    if len(phones) > FEW_PHONES:
        # A join on the array, not `number IN (…)`: with hundreds of numbers the planner picks
        # the trigram index (it answers equality too) and spends seconds per batch.
        owners = phone_owners(phones)
        seen = set(scope.filter(pk__in=set(owners.values())).values_list("pk", flat=True))
        index.by_phone = {number: owner for number, owner in owners.items() if owner in seen}
    elif phones:
        # A till's single receipt: one query, scoped, on the unique btree index.
        index.by_phone = dict(
            CustomerPhone.objects.filter(number__in=phones, customer__in=scope).values_list(
                "number", "customer_id"
            )
        )
    if cards:
        index.by_card = dict(scope.filter(card_number__in=cards).values_list("card_number", "pk"))
        # A card merged into another one still finds its owner (customers.duplicates).
        for number, survivor_id in MergedAlias.objects.filter(
            old_card_number__in=cards - set(index.by_card), survivor__in=scope
        ).values_list("old_card_number", "survivor_id"):
            index.by_card[number] = survivor_id
    return index


def line_inputs(
    data: dict[str, Any], products: dict[str, Product]
) -> tuple[list[LineInput], dict[str, list[str]]]:
    """The receipt's lines with their products, or the errors keyed like the API's fields."""
    errors: dict[str, list[str]] = {}
    lines = []
    for index, line in enumerate(data["lines"]):
        product = products.get(line["sku"])
        if product is None:
            errors[f"lines[{index}].sku"] = [
                _("Unknown SKU %(sku)s; send name (and category) to create it.")
                % {"sku": line["sku"]}
            ]
            continue
        lines.append(
            LineInput(
                product=product,
                quantity=line["quantity"],
                unit_price=line["unit_price"],
                discount=line["discount"],
                unit_cost=line.get("unit_cost"),
            )
        )
    if not errors:
        # The catalogue cost stands in for an omitted unit cost, so capacity is checked here,
        # once the products are known.
        errors.update(receipt_capacity_errors(lines))
    return lines, errors
