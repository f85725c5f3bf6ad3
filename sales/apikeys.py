"""POS API keys: issuing, revoking and checking the `Authorization: Api-Key <key>` credential.

The key itself is shown once, when issued; only its SHA-256 is stored. A key is 256 random
bits, so a fast hash is safe here where it would not be for a password.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from django.db import connection, models, transaction
from django.utils import timezone

from crm.api_tokens import last_used_touch
from crm.audit import audit_record
from crm.models import AuditAction, Store

from .models import PosApiKey, PosKeyKind

KEY_PREFIX = "ck_"
PREFIX_LENGTH = 11


def key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: PosApiKey
    raw: str


@transaction.atomic
def pos_key_issue(*, store: Store, name: str, actor=None, kind: str = PosKeyKind.TILL) -> IssuedKey:
    """Create a key for `store`; the returned raw key is the only copy that will ever exist."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = PosApiKey.objects.create(
        store=store,
        name=name,
        kind=kind,
        prefix=raw[:PREFIX_LENGTH],
        key_hash=key_hash(raw),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        actor=actor,
        action=AuditAction.API_KEY,
        obj=key,
        event="issued",
        store=store.code,
        kind=key.kind,
    )
    return IssuedKey(key=key, raw=raw)


@transaction.atomic
def pos_key_revoke(*, key: PosApiKey, actor=None) -> PosApiKey:
    """Revoke a key at once; requests carrying it get 401 from now on."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action=AuditAction.API_KEY, obj=key, event="revoked")
    return key


@dataclass(eq=False)
class PosPrincipal:
    """The `request.user` of a POS request: a till of one store, not a person.

    `customers.access` reads `is_pos_client` and `store_ids`: a till looks up any customer by an
    exact phone or card, creates cards, and reads in full only the customers of its own store.
    """

    api_key: PosApiKey
    store: Store
    is_pos_client: bool = True
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True
    is_superuser: bool = False
    is_staff: bool = False
    store_ids: list[int] = field(default_factory=list)

    # A till adds products it sells but never changes an existing one (sales/catalogue.py).
    PERMISSIONS = frozenset(
        {
            "customers.lookup_customers",
            "customers.add_customer",
            "customers.add_processingconsent",
            "customers.view_customer",
            "customers.view_contact_details",
            "sales.add_receipt",
            "sales.view_receipt",
            "sales.add_return",
            "sales.add_product",
        }
    )
    # The chain's product system: the catalogue and nothing else, no customer at all.
    CATALOGUE_PERMISSIONS = frozenset({"sales.add_product", "sales.change_product"})

    def __post_init__(self) -> None:
        # A catalogue key works in no store's customer base: it sees nobody.
        self.store_ids = [] if self.is_catalogue else [self.store.pk]
        self.pk = None
        self.id = None

    @property
    def is_catalogue(self) -> bool:
        return self.api_key.kind == PosKeyKind.CATALOGUE

    def has_perm(self, perm: str, obj=None) -> bool:
        return perm in (self.CATALOGUE_PERMISSIONS if self.is_catalogue else self.PERMISSIONS)

    def has_perms(self, perms, obj=None) -> bool:
        return all(self.has_perm(p) for p in perms)

    def get_username(self) -> str:
        return f"pos:{self.api_key.prefix}"

    def __str__(self) -> str:
        return f"{self.store.code} / {self.api_key.name}"


def _columns(model, alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


def _from_row(model, values) -> models.Model:
    """A model instance from its concrete columns as a plain cursor returns them, converted as
    the ORM converts them (a time zone column becomes a ZoneInfo)."""
    columns = model._meta.concrete_fields
    converted = []
    for column, value in zip(columns, values, strict=True):
        expression = column.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(expression) + column.get_db_converters(
            connection
        ):
            value = convert(value, expression, connection)
        converted.append(value)
    return model.from_db(connection.alias, [column.attname for column in columns], converted)


# The key and its store in one plain statement, the columns taken from the models: every POS
# request checks its key, and the ORM spent more building this query (two wide models joined,
# the default ordering through the store) than PostgreSQL spends answering it. Read on every
# request, never cached, so a revoked key or a closed store is refused from the next one on.
_KEY_SQL = (
    f"SELECT {_columns(PosApiKey, 'k')}, {_columns(Store, 's')}"  # noqa: S608 - own columns
    f' FROM "{PosApiKey._meta.db_table}" k JOIN "{Store._meta.db_table}" s ON s.id = k.store_id'
    " WHERE k.key_hash = %s AND k.revoked_at IS NULL AND s.is_active"
)
_KEY_WIDTH = len(PosApiKey._meta.concrete_fields)


def pos_key_authenticate(raw_key: str) -> PosPrincipal | None:
    """The principal for a presented key, or None when it is unknown or revoked."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 100:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_KEY_SQL, [key_hash(raw_key)])
        row = cursor.fetchone()
    if row is None:
        return None
    key = _from_row(PosApiKey, row[:_KEY_WIDTH])
    store = _from_row(Store, row[_KEY_WIDTH:])
    key.store = store
    last_used_touch(PosApiKey, key)
    return PosPrincipal(api_key=key, store=store)
