"""The customer-card processor: parse a batch of rows, match them to cards, create or update.

Validation is the services' own: `normalize_phone` (with an equivalent fast path for mobiles),
the email validator, `custom_fields_clean` and the model's field limits. Updates go through
`customer_update` and `consent_set` one card at a time (they are few in a real import and each
needs its before/after audit); new cards are written in bulk (card, phones, consent history
and a `customer_create` audit row each), because a chain moving in creates tens of thousands.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import AuditAction, AuditEvent
from customers.access import visible_customers

from ..models import (
    AcquisitionChannel,
    Channel,
    ConsentEvent,
    Customer,
    CustomerPhone,
    CustomField,
    CustomFieldType,
    LifecycleStage,
    Source,
)
from ..services import consent_set as service_consent_set
from ..services import custom_field_definitions, custom_fields_clean, customer_update
from . import parsing
from .engine import RowReport, register_processor
from .models import ImportJob, ImportKind, ImportRow, RowOutcome
from .sql import (
    Encoded,
    card_and_email_owners,
    column_defaults,
    json_dumps,
    json_insert_many,
    next_ids,
    phone_owners,
)

TEXT_FIELDS = (
    "surname",
    "first_name",
    "patronymic",
    "card_number",
    "postal_code",
    "city",
    "address",
    "workplace",
    "position",
    "interests",
    "notes",
)
# Fields an update may change; the user picks which of them may overwrite a non-empty value.
UPDATABLE = (*TEXT_FIELDS, "email", "birth_date", "gender", "home_store", "acquisition_channel")
MATCH_KEYS = ("phone", "card", "email")
CHANNELS = frozenset(Channel.values)  # `.values` builds a new list on every access
POLICIES = ("create", "update", "both")
DEFAULT_OPTIONS = {
    "match_order": list(MATCH_KEYS),
    "policy": "both",
    "overwrite": [],
    "clear_empty": False,
}


@dataclass
class Record:
    row_no: int
    fields: dict[str, Any] = field(default_factory=dict)
    phones: list[str] = field(default_factory=list)
    consents: dict[str, bool] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    empty: set[str] = field(default_factory=set)  # mapped columns left blank in this row
    errors: dict[str, list[str]] = field(default_factory=dict)
    # Set by `CustomerProcessor.prepare` in the reading thread, so the writing one, which the
    # database waits on, only looks them up: the match keys, and the card as a new one would be
    # written (JSON text of its columns, its phones' and consents' rows, each without the id the
    # card gets only then and its opening brace; see `_encode_new`).
    match_keys: list[tuple[str, str]] | None = None
    new_card: str | None = None
    new_card_columns: tuple[str, ...] = ()
    new_phones: list[str] = field(default_factory=list)
    new_consents: list[str] = field(default_factory=list)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(str(message))

    def keys(self) -> list[tuple[str, str]]:
        found = [("phone", p) for p in self.phones]
        if self.fields.get("card_number"):
            found.append(("card", self.fields["card_number"]))
        if self.fields.get("email"):
            found.append(("email", self.fields["email"].upper()))
        return found


@functools.cache
def _max_length(name: str) -> int | None:
    return Customer._meta.get_field(name).max_length


class CustomerProcessor:
    # The tables each batch's matching reads and writes grow: the engine keeps their planner
    # statistics current during a large import.
    analyze_tables = (Customer._meta.db_table, CustomerPhone._meta.db_table)

    def __init__(self, job: ImportJob):
        self.job = job
        self.actor = job.created_by
        self.options = {**DEFAULT_OPTIONS, **(job.options or {})}
        self.mapping = {int(k): v for k, v in (job.mapping or {}).items() if v}
        self.now = timezone.now()
        Store = apps.get_model("crm", "Store")
        self.stores: dict[str, Any] = {}
        for store in Store.objects.all():
            self.stores[store.code.lower()] = store
            self.stores[store.name.lower()] = store
        self.channels = {}
        for channel in AcquisitionChannel.objects.all():
            self.channels[channel.code.lower()] = channel
            self.channels[channel.name.lower()] = channel
        self.allowed_store_ids = self._allowed_store_ids()
        self.defaults: dict[str, Any] | None = None
        self.custom_types = dict(CustomField.objects.values_list("key", "type"))
        self.custom_definitions = custom_field_definitions()
        # Read here: `parse` runs in the engine's reading thread, which never queries.
        self.job_store = job.store if job.store_id else None
        # Keys seen earlier in this file in this process: rows matching each other are reported.
        self.seen: dict[tuple[str, str], int] = {}
        # Whether the reading thread encodes rows as new cards ahead (see `prepare`): not while
        # the last batch created none (a dry run, a file imported again): the writer needs the GIL.
        self.encode_ahead = True

    def _allowed_store_ids(self) -> set[int] | None:
        """None: any store; else the importing manager's own stores."""
        user = self.actor
        if user is None or user.is_superuser or user.has_perm("customers.view_all_customers"):
            return None
        from customers.access import user_store_ids

        return set(user_store_ids(user))

    def group_key(self, cells: list[Any]) -> Any:
        return None

    # --- parsing -----------------------------------------------------------------------------

    def parse(self, row_no: int, cells: list[Any]) -> Record:
        record = Record(row_no)
        raw_custom: dict[str, Any] = {}
        for index, target in self.mapping.items():
            value = cells[index] if index < len(cells) else ""
            if parsing.is_blank(value):
                record.empty.add(target)
                continue
            try:
                self._parse_cell(record, target, value, raw_custom)
            except ValueError as exc:
                record.error(target, str(exc))
            except ValidationError as exc:
                for message in exc.messages:
                    record.error(target, message)
        if raw_custom:
            try:
                record.custom = custom_fields_clean(raw_custom, self.custom_definitions)
            except ValidationError as exc:
                for message in exc.messages:
                    record.error("custom_fields", message)
        if self.job_store is not None and "home_store" not in record.fields:
            record.fields["home_store"] = self.job_store
        store = record.fields.get("home_store")
        if self.allowed_store_ids is not None and (
            store is None or store.pk not in self.allowed_store_ids
        ):
            record.error("home_store", _("You may import only into your own stores."))
        return record

    def _parse_cell(self, record: Record, target: str, value: Any, raw_custom: dict) -> None:
        if target.startswith("custom:"):
            key = target[7:]
            kind = self.custom_types.get(key)
            if kind == CustomFieldType.NUMBER:
                value = parsing.parse_decimal(value)
            elif kind == CustomFieldType.DATE:
                value = parsing.parse_date(value)
            elif kind == CustomFieldType.BOOLEAN:
                value = parsing.parse_bool(value)
            elif kind == CustomFieldType.MULTI:
                value = [v.strip() for v in parsing.text(value).split(";") if v.strip()]
            elif not isinstance(value, Decimal | bool | list):
                value = parsing.text(value)
            raw_custom[key] = value.isoformat() if isinstance(value, dt.date) else value
            return
        if target == "full_name":
            surname, first, patronymic = parsing.split_full_name(value)
            for name, part in (
                ("surname", surname),
                ("first_name", first),
                ("patronymic", patronymic),
            ):
                if part:
                    record.fields.setdefault(name, part)
            self._check_lengths(record, ("surname", "first_name", "patronymic"))
        elif target == "phone":
            for raw in parsing.split_phones(value):
                number = parsing.phone_e164(raw)
                if number not in record.phones:
                    record.phones.append(number)
        elif target == "email":
            emails = parsing.split_emails(value)
            for email in emails:
                validate_email(email)
            record.fields["email"] = emails[0]
            if len(emails) > 1:
                record.fields["extra_emails"] = emails[1:]
        elif target == "birth_date":
            record.fields["birth_date"] = parsing.parse_birth_date(value)
        elif target == "gender":
            record.fields["gender"] = parsing.parse_gender(value)
        elif target == "home_store":
            store = self.stores.get(parsing.text(value).lower())
            if store is None:
                raise ValueError(_("Unknown store %(store)s.") % {"store": parsing.text(value)})
            record.fields["home_store"] = store
        elif target == "acquisition_channel":
            channel = self.channels.get(parsing.text(value).lower())
            if channel is None:
                raise ValueError(
                    _("Unknown source %(source)s.") % {"source": parsing.text(value)[:60]}
                )
            record.fields["acquisition_channel"] = channel
        elif target.startswith("consent_"):
            record.consents[target[8:]] = parsing.parse_bool(value)
        elif target in TEXT_FIELDS:
            record.fields[target] = parsing.text(value)
            self._check_lengths(record, (target,))

    def _check_lengths(self, record: Record, names: Iterable[str]) -> None:
        for name in names:
            value = record.fields.get(name)
            limit = _max_length(name)
            if value and limit and len(value) > limit:
                record.fields.pop(name)
                record.error(
                    name,
                    _("Too long: at most %(n)s characters.") % {"n": limit},
                )

    # --- matching ----------------------------------------------------------------------------

    def _existing(self, records: list[Record]) -> dict[tuple[str, str], int]:
        phones = {p for r in records for p in r.phones}
        cards = {r.fields["card_number"] for r in records if r.fields.get("card_number")}
        emails = {r.fields["email"].upper() for r in records if r.fields.get("email")}
        found: dict[tuple[str, str], int] = {}
        for number, cid in phone_owners(phones).items():
            found[("phone", number)] = cid
        for kind, value, cid in card_and_email_owners(cards, emails):
            found.setdefault((kind, value), cid)
        return found

    def _match(self, keys: list[tuple[str, str]], existing: dict) -> tuple[int | None, str | None]:
        """The matched card by the configured order, or an error when keys point at two cards."""
        by_kind: dict[str, set[int]] = {}
        for kind, value in keys:
            cid = existing.get((kind, value))
            if cid:
                by_kind.setdefault(kind, set()).add(cid)
        if not by_kind:
            return None, None  # a new card, most rows of a first import
        matched = None
        for kind in self.options["match_order"]:
            ids = by_kind.get(kind)
            if ids:
                matched = min(ids)
                break
        # Phones and card numbers are unique in the base: they cannot go to another card.
        hard = {cid for kind in ("phone", "card") for cid in by_kind.get(kind, ())}
        if matched is None and hard:
            matched = min(hard)
        if hard - {matched}:
            return None, _("Phone or card belongs to another customer (#%(ids)s).") % {
                "ids": ", #".join(str(i) for i in sorted(hard - {matched}))
            }
        return matched, None

    # --- the batch ---------------------------------------------------------------------------

    def prepare(self, batch: list[tuple[int, list[Any]]]) -> list[Record]:
        """The rows parsed and checked, with no database access (the engine's reading thread).

        Each valid row also gets its match keys and its new card's JSON here: this thread runs
        while the writing one waits for PostgreSQL, which then waits for the writer's Python.
        """
        records = [self.parse(row_no, cells) for row_no, cells in batch]
        for record in records:
            if not record.errors:
                record.match_keys = record.keys()
                if self.encode_ahead:
                    _encode_new(record)
        return records

    def process(self, records: list[Record], *, dry_run: bool) -> list[RowReport]:
        existing = self._existing([r for r in records if not r.errors])
        visible = self._visible_ids(set(existing.values()))
        created_by_job = self._created_by_this_job(set(existing.values()))
        out: list[RowReport | None] = []
        to_create: list[Record] = []
        updates: list[tuple[Record, int]] = []
        for record in records:
            if record.errors:
                out.append(self._error_row(record))
                continue
            keys = record.match_keys if record.match_keys is not None else record.keys()
            earlier = [self.seen[k] for k in keys if k in self.seen]
            for key in keys:
                self.seen.setdefault(key, record.row_no)
            customer_id, conflict = self._match(keys, existing)
            if conflict:
                out.append(
                    RowReport(
                        row_no=record.row_no, outcome=RowOutcome.ERROR, message=conflict[:500]
                    )
                )
                continue
            if earlier or customer_id in created_by_job:
                first = min(earlier) if earlier else created_by_job[customer_id]
                out.append(
                    RowReport(
                        row_no=record.row_no,
                        outcome=RowOutcome.SKIPPED,
                        customer_id=customer_id,
                        message=(_("Same customer as row %(row)s of this file.") % {"row": first}),
                    )
                )
                continue
            if customer_id is None:
                if self.options["policy"] == "update":
                    out.append(self._skip(record, _("No matching card (update-only import).")))
                elif not (
                    record.phones
                    or record.fields.get("card_number")
                    or record.fields.get("email")
                    or record.fields.get("surname")
                    or record.fields.get("first_name")
                ):
                    out.append(self._skip(record, _("Nothing to identify the customer by.")))
                else:
                    to_create.append(record)
                    out.append(RowReport(row_no=record.row_no, outcome=RowOutcome.CREATED))
                continue
            if customer_id not in visible:
                out.append(self._skip(record, _("Matches a card outside your stores.")))
                continue
            if self.options["policy"] == "create":
                out.append(
                    RowReport(
                        row_no=record.row_no,
                        outcome=RowOutcome.SKIPPED,
                        customer_id=customer_id,
                        message=_("The card exists (create-only import)."),
                    )
                )
                continue
            updates.append((record, customer_id))
            out.append(None)  # the update's line, written below in the row's place
        if updates:
            reports = iter(self._updates(updates, dry_run=dry_run))
            out = [row if row is not None else next(reports) for row in out]
        self.encode_ahead = bool(to_create) and not dry_run
        if to_create and not dry_run:
            ids = self._create(to_create)
            rows = {r.row_no: r for r in out}
            for record, cid in zip(to_create, ids, strict=True):
                rows[record.row_no].customer_id = cid
        return out

    def _visible_ids(self, ids: set[int]) -> set[int]:
        if not ids:
            return set()
        return set(visible_customers(self.actor).filter(pk__in=ids).values_list("pk", flat=True))

    def _created_by_this_job(self, ids: set[int]) -> dict[int, int]:
        if not ids:
            return {}
        return dict(
            ImportRow.objects.filter(
                job=self.job, phase=self.job.phase, outcome=RowOutcome.CREATED, customer_id__in=ids
            ).values_list("customer_id", "row_no")
        )

    def _error_row(self, record: Record) -> RowReport:
        first = next(iter(record.errors.items()))
        return RowReport(
            row_no=record.row_no,
            outcome=RowOutcome.ERROR,
            changes=record.errors,
            message=f"{field_label(first[0])}: {first[1][0]}"[:500],
        )

    def _skip(self, record: Record, message: str) -> RowReport:
        return RowReport(row_no=record.row_no, outcome=RowOutcome.SKIPPED, message=message[:500])

    # --- writes ------------------------------------------------------------------------------

    def _create(self, records: list[Record]) -> list[int]:
        actor = self.actor if getattr(self.actor, "is_authenticated", False) else None
        actor_id = actor.pk if actor else None
        if self.defaults is None:
            self.defaults = column_defaults(Customer, {"created_at", "updated_at"})
        ids = next_ids(Customer, len(records))
        now = timezone.now()
        # What every new card, phone, consent and audit row of the batch shares travels once
        # (json_insert's base record); each row carries only its own values.
        card_base = {
            **self.defaults,
            "source": Source.IMPORT,
            "created_by_id": actor_id,
            "lifecycle_stage": LifecycleStage.LEAD,
            "created_at": now,
            "updated_at": now,
        }
        consent_base = {
            "at": now,
            "source": Source.IMPORT,
            "actor_id": actor_id,
            "note": _("Import #%(id)s") % {"id": self.job.pk},
        }
        audit_base = {
            "at": now,
            "actor_id": actor_id,
            "actor_name": actor.get_username() if actor else "",
            "action": AuditAction.CUSTOMER_CREATE,
            "object_type": "customers.customer",
            "ip_address": None,
            "details": {"source": "import", "import": self.job.pk},
        }
        customers, phones, consents, audits = [], [], [], []
        shapes: set[tuple[str, ...]] = set()  # the cards' column lists (a few per file)
        for record, pk in zip(records, ids, strict=True):
            if record.new_card is None:
                _encode_new(record)
            head = f'{{"customer_id":{pk},'
            customers.append(f'{{"id":{pk},{record.new_card}')
            shapes.add(record.new_card_columns)
            phones.extend(head + phone for phone in record.new_phones)
            consents.extend(head + consent for consent in record.new_consents)
            audits.append(f'{{"object_id":"{pk}"}}')
        columns = dict.fromkeys(("id", *(name for shape in sorted(shapes) for name in shape)))
        json_insert_many(
            [
                (Customer, _encoded(customers, tuple(columns)), card_base),
                (CustomerPhone, _encoded(phones, _PHONE_COLUMNS), {"kind": "mobile"}),
                (ConsentEvent, _encoded(consents, _CONSENT_COLUMNS), consent_base),
                (AuditEvent, _encoded(audits, ("object_id",)), audit_base),
            ]
        )
        return ids

    def _updates(self, updates: list[tuple[Record, int]], *, dry_run: bool) -> list[RowReport]:
        """The matched cards' rows, judged in file order.

        The cards and their phones are read in two queries for the batch, not two per row (a
        file imported again was 300 rows/s). A card two rows of the batch match (one by phone,
        the other by e-mail) is read again for the second, so that it sees the first's changes.
        """
        ids = {cid for _record, cid in updates}
        cards = Customer.objects.in_bulk(ids)
        phones: dict[int, list[str]] = {}
        for cid, number in CustomerPhone.objects.filter(customer_id__in=ids).values_list(
            "customer_id", "number"
        ):
            phones.setdefault(cid, []).append(number)  # the model's order: primary first
        out = []
        done: set[int] = set()
        for record, cid in updates:
            if cid in done or cid not in cards:
                out.append(self._update(record, cid, dry_run=dry_run))
                continue
            done.add(cid)
            out.append(
                self._update(
                    record, cid, dry_run=dry_run, customer=cards[cid], phones=phones.get(cid, [])
                )
            )
        return out

    def _update(
        self,
        record: Record,
        customer_id: int,
        *,
        dry_run: bool,
        customer: Customer | None = None,
        phones: list[str] | None = None,
    ) -> RowReport:
        if customer is None:
            customer = Customer.objects.get(pk=customer_id)
        overwrite = set(self.options["overwrite"])
        data: dict[str, Any] = {}
        for name, value in record.fields.items():
            if name not in UPDATABLE and name != "extra_emails":
                continue
            current = getattr(customer, f"{name}_id" if name in _FK else name)
            new = value.pk if name in _FK else value
            if current == new or (name == "email" and str(current).lower() == str(new).lower()):
                continue
            if current in (None, "", []) or name in overwrite:
                data[name] = value
        if self.options["clear_empty"]:
            for name in record.empty & overwrite & set(UPDATABLE):
                if getattr(customer, name) not in (None, ""):
                    data[name] = None if name in {"birth_date", "card_number"} | _FK else ""
        if phones is None:
            phones = list(customer.phones.values_list("number", flat=True))
        current_phones = list(phones)
        new_phones = [p for p in record.phones if p not in current_phones]
        custom = {
            k: v
            for k, v in record.custom.items()
            if customer.custom_fields.get(k) != v
            and (k not in customer.custom_fields or f"custom:{k}" in overwrite)
        }
        consents = {
            c: g for c, g in record.consents.items() if getattr(customer, f"consent_{c}") != g
        }
        changes = {
            n: [_plain(getattr(customer, f"{n}_id" if n in _FK else n)), _plain(v)]
            for n, v in data.items()
        }
        if new_phones:
            changes["phones"] = [current_phones, current_phones + new_phones]
        if custom:
            changes["custom_fields"] = [
                customer.custom_fields,
                {**customer.custom_fields, **custom},
            ]
        for channel, granted in consents.items():
            changes[f"consent_{channel}"] = [not granted, granted]
        if not changes:
            return RowReport(
                row_no=record.row_no, outcome=RowOutcome.UNCHANGED, customer_id=customer_id
            )
        if not dry_run:
            try:
                customer_update(
                    actor=self.actor,
                    customer=customer,
                    data=data,
                    phones=current_phones + new_phones if new_phones else None,
                    custom_fields=custom or None,
                )
            except ValidationError as exc:
                messages = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
                first = next(iter(messages.items()))
                return RowReport(
                    row_no=record.row_no,
                    outcome=RowOutcome.ERROR,
                    customer_id=customer_id,
                    changes=messages,
                    message=f"{field_label(first[0])}: {first[1][0]}"[:500],
                )
            for channel, granted in consents.items():
                service_consent_set(
                    customer=customer,
                    channel=channel,
                    granted=granted,
                    source=Source.IMPORT,
                    actor=self.actor,
                    note=_("Import #%(id)s") % {"id": self.job.pk},
                )
        return RowReport(
            row_no=record.row_no,
            outcome=RowOutcome.UPDATED,
            customer_id=customer_id,
            changes=changes,
        )


_FK = {"home_store", "acquisition_channel", "assigned_manager"}
_PHONE_COLUMNS = ("customer_id", "number", "is_primary")
_CONSENT_COLUMNS = ("customer_id", "channel", "granted")


def _encode_new(record: Record) -> None:
    """The record's card, phones and consent history rows as JSON, each missing its leading
    `{"id":` or `{"customer_id":` part (the id is reserved only when the batch is written)."""
    row: dict[str, Any] = {"custom_fields": record.custom}
    for name, value in record.fields.items():
        if name in _FK:
            row[f"{name}_id"] = value.pk if value is not None else None
        else:
            row[name] = value
    for channel, granted in record.consents.items():
        row[f"consent_{channel}"] = granted
    if record.phones:
        row["phone"] = record.phones[0]
    # Each text starts with "{", which the writer replaces by the id's part.
    record.new_card = json_dumps(row)[1:]
    record.new_card_columns = tuple(row)
    # Numbers are E.164 (a plus and digits) and channels our own codes: nothing to escape.
    record.new_phones = [
        f'"number":"{number}","is_primary":{"true" if i == 0 else "false"}}}'
        for i, number in enumerate(record.phones)
    ]
    record.new_consents = [
        f'"channel":"{channel}","granted":{"true" if granted else "false"}}}'
        for channel, granted in record.consents.items()
        if channel in CHANNELS
    ]


def _encoded(rows: list[str], columns: tuple[str, ...]) -> Encoded:
    return Encoded("[" + ",".join(rows) + "]", columns, len(rows))


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return value


def field_label(name: str) -> str:
    """The user's-language name of a target or card field, for report lines."""
    from .mapping import CUSTOMER_TARGETS

    for target in CUSTOMER_TARGETS:
        if target.key == name:
            return str(target.label)
    if name.startswith("custom:"):
        return name[7:]
    try:
        return str(Customer._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


register_processor(ImportKind.CUSTOMERS, CustomerProcessor)
