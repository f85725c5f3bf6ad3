"""The catalogue the tills send: products upserted by SKU in one statement."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ..models import Product
from .references import categories_for_paths, category_for


@transaction.atomic
def products_upsert_bulk(*, items: list[dict[str, Any]]) -> list[tuple[str, int, bool]]:
    """Insert or update products by SKU in one statement; returns (sku, id, created)."""
    categories = categories_for_paths(item["category"] for item in items if item.get("category"))
    known = set(
        Product.objects.filter(sku__in=[i["sku"] for i in items]).values_list("sku", flat=True)
    )
    products = Product.objects.bulk_create(
        [
            Product(
                sku=item["sku"],
                name=item["name"],
                category=category_for(categories, item.get("category")),
                price=item["price"],
                cost=item["cost"],
                is_active=item["is_active"],
            )
            for item in items
        ],
        update_conflicts=True,
        unique_fields=["sku"],
        update_fields=["name", "category", "price", "cost", "is_active", "updated_at"],
    )
    return [(p.sku, p.pk, p.sku not in known) for p in products]
