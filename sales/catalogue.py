"""Who may change the chain's catalogue through the API, and the audit of every upsert.

Prices, costs and the active flag are the chain's, not a store's: a wrong cost turns every
store's margins (and, at absurd values, its receipts) wrong. So a store's till key may add the
products it sells, but an existing product changes only through a catalogue key
(`create_pos_key --catalogue`, or the kind in the admin) or a user with `sales.change_product`
(Administrators). Each upsert is one audit event with the changes as before/after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from crm.audit import audit_record
from crm.models import AuditAction

from .ingest.catalogue import products_upsert_bulk
from .models import Product

# What a till may never change on a product that already exists.
GUARDED_FIELDS = ("price", "cost", "is_active")
AUDITED_FIELDS = ("name", *GUARDED_FIELDS)
# Enough to read the event; a whole catalogue in one audit row would drown the log.
AUDIT_DETAIL_LIMIT = 200


class CatalogueChangeRefused(Exception):
    """The caller may add products but tried to change existing ones; `fields` says which."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(_("Only a catalogue key may change existing products."))
        self.fields = fields


@dataclass(frozen=True)
class UpsertRow:
    sku: str
    id: int
    status: str  # created, updated or unchanged


def may_change_catalogue(principal) -> bool:
    return bool(principal and principal.has_perm("sales.change_product"))


def _text(value) -> str:
    return str(value)


@transaction.atomic
def catalogue_upsert(*, principal, items: list[dict[str, Any]], request=None) -> list[UpsertRow]:
    """Create or update products by SKU as `principal` may; all or nothing, audited."""
    skus = [item["sku"] for item in items]
    # Locked so two upserts of one SKU serialise and the audited "before" is what was replaced.
    existing = {p.sku: p for p in Product.objects.select_for_update().filter(sku__in=skus)}
    full = may_change_catalogue(principal)
    before: dict[str, dict[str, str]] = {}
    after: dict[str, dict[str, str]] = {}
    refused: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        product = existing.get(item["sku"])
        if product is None:
            continue
        for name in AUDITED_FIELDS:
            if getattr(product, name) == item[name]:
                continue
            before.setdefault(item["sku"], {})[name] = _text(getattr(product, name))
            after.setdefault(item["sku"], {})[name] = _text(item[name])
            if name in GUARDED_FIELDS:
                refused[f"products[{index}].{name}"] = [
                    _("SKU %(sku)s exists; only a catalogue key may change its %(field)s.")
                    % {"sku": item["sku"], "field": Product._meta.get_field(name).verbose_name}
                ]
    if not full:
        if refused:
            raise CatalogueChangeRefused(refused)
        # A till's other differences (its own name for a product) are not applied.
        before, after = {}, {}
    if full:
        rows = [
            UpsertRow(sku, pk, "created" if created else "updated")
            for sku, pk, created in products_upsert_bulk(items=items)
        ]
    else:
        new = [item for item in items if item["sku"] not in existing]
        created = {sku: pk for sku, pk, _ in products_upsert_bulk(items=new)} if new else {}
        rows = [
            UpsertRow(sku, created[sku], "created")
            if sku in created
            else UpsertRow(sku, existing[sku].pk, "unchanged")
            for sku in skus
        ]
    new_skus = [row.sku for row in rows if row.status == "created"]
    is_till = getattr(principal, "is_pos_client", False)
    audit_record(
        actor=None if is_till else principal,
        actor_name=principal.get_username() if is_till else "",
        action=AuditAction.CATALOGUE_CHANGE,
        obj=principal.api_key if is_till else None,
        request=request,
        created=new_skus[:AUDIT_DETAIL_LIMIT],
        created_count=len(new_skus),
        updated_count=sum(1 for row in rows if row.status == "updated"),
        before=dict(list(before.items())[:AUDIT_DETAIL_LIMIT]),
        after=dict(list(after.items())[:AUDIT_DETAIL_LIMIT]),
    )
    return rows
