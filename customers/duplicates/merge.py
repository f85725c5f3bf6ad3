"""Merging two or more cards into one survivor, and undoing it.

Field values come from the card whose source ranks highest in the admin's order
(`SourcePriority`), the newest card breaking ties; the person merging may pick any field's card
by hand. Every row that points at an absorbed card — phones, consent history, contacts,
receipts, returns, campaign messages, whatever a higher app keeps — moves to the survivor
through Django's relation metadata, so this module never imports the apps above it. Rows that
cannot move because the survivor already has their twin (a segment membership, a per-customer
metrics row) are derived data: they are dropped and recomputed. A consent withdrawal on any
card wins over a grant. The absorbed ids and card numbers become `MergedAlias` rows that keep
resolving to the survivor (the survivor keeps its own card number when it has one, else takes
the highest-ranked card's). One transaction; audited with before and after; undoable from the
merge record within N days (the dropped derived rows are recomputed, not restored).

A higher app whose rows cannot simply move (loyalty: one points account per card and an
append-only ledger) folds them itself on `customers_merged`, sent before the rows move. Moved
receipts keep their dates, so the nightly analytics learns of the cards a merge or an undo
touched from `selectors.cards_rehomed_since`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit_record
from crm.models import AuditAction
from customers.access import visible_customers

from ..models import Channel, ConsentEvent, Customer, CustomerPhone, Source
from ..services import CARD_FIELDS, consent_set
from .models import CustomerMerge, DuplicatePair, MergedAlias, PairStatus, SourcePriority

# Sent inside the transaction of a merge, before the absorbed cards' rows move (both cards still
# exist), and of an undo, once the restored cards and their rows are back. kwargs: survivor_id,
# absorbed_ids, undone (bool). A receiver folds what a higher app keeps per card (loyalty's
# points accounts) and defers what must wait for the commit (metrics) to transaction.on_commit;
# what it raises undoes the whole merge.
customers_merged = Signal()

DEFAULT_PRIORITY = ("pos", "import", "api", "web", "admin", "unsubscribe", "demo")
# Fields chosen by source priority (the side-by-side screen shows these): every card field a
# service sets, but the extra emails (merged as a union) and the do-not-contact flag (any wins).
MERGE_FIELDS = tuple(name for name in CARD_FIELDS if name not in {"extra_emails", "do_not_contact"})
_OWN = {CustomerMerge, MergedAlias, DuplicatePair}


def source_ranks() -> dict[str, int]:
    """Rank per source: the admin's order first, then the defaults for sources not listed."""
    ranks = dict(SourcePriority.objects.values_list("source", "rank"))
    base = max(ranks.values(), default=0) + 1
    for offset, source in enumerate(DEFAULT_PRIORITY):
        ranks.setdefault(source, base + offset)
    return ranks


def _empty(value: Any) -> bool:
    return value in (None, "", [], {})


def _attname(name: str) -> str:
    return Customer._meta.get_field(name).attname


def proposed_values(cards: list[Customer]) -> dict[str, int]:
    """{field: id of the card whose value wins}: highest-ranked source, then the newest card."""
    ranks = source_ranks()
    ordered = sorted(
        cards, key=lambda c: (ranks.get(c.source, 99), -c.updated_at.timestamp(), -c.pk)
    )
    choice = {}
    for name in MERGE_FIELDS:
        attname = _attname(name)
        winner = next((c for c in ordered if not _empty(getattr(c, attname))), ordered[0])
        choice[name] = winner.pk
    return choice


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def card_snapshot(customer: Customer) -> dict[str, Any]:
    data = {f.attname: _plain(getattr(customer, f.attname)) for f in Customer._meta.concrete_fields}
    data["tags"] = sorted(customer.tags.values_list("pk", flat=True))
    return data


def _restore_value(attname: str, value: Any) -> Any:
    field = next(f for f in Customer._meta.concrete_fields if f.attname == attname)
    return field.to_python(value) if value is not None else None


def _relations() -> list:
    """Reverse FK/one-to-one relations to Customer, from every installed app."""
    found = []
    for rel in Customer._meta.related_objects:
        if rel.related_model in _OWN or rel.many_to_many:
            continue
        if rel.field.model is Customer:
            continue
        found.append(rel)
    return found


def _scope_cards(actor, ids: Iterable[int]) -> list[Customer]:
    ids = sorted(set(ids))
    cards = list(visible_customers(actor).select_for_update().filter(pk__in=ids).order_by("pk"))
    if len(cards) != len(ids):
        raise Customer.DoesNotExist(_("No such customer."))
    return cards


def _latest_consents(ids: list[int]) -> dict[tuple[int, str], bool]:
    latest: dict[tuple[int, str], bool] = {}
    for cid, channel, granted in (
        ConsentEvent.objects.filter(customer_id__in=ids)
        .order_by("customer_id", "channel", "-at", "-id")
        .values_list("customer_id", "channel", "granted")
    ):
        latest.setdefault((cid, channel), granted)
    return latest


@transaction.atomic
def customer_merge(
    *,
    actor,
    survivor_id: int,
    absorbed_ids: Iterable[int],
    choices: Mapping[str, int] | None = None,
    request=None,
) -> CustomerMerge:
    """Merge the absorbed cards into the survivor; Customer.DoesNotExist for a card out of scope."""
    if not actor.has_perm("customers.change_customer"):
        raise PermissionDenied
    absorbed_ids = sorted({int(i) for i in absorbed_ids} - {int(survivor_id)})
    if not absorbed_ids:
        raise ValidationError({"customers": [_("Choose at least two cards to merge.")]})
    cards = _scope_cards(actor, [survivor_id, *absorbed_ids])
    by_id = {c.pk: c for c in cards}
    survivor = by_id[survivor_id]
    absorbed = [by_id[i] for i in absorbed_ids]
    if any(c.erased_at for c in cards):
        raise ValidationError({"customers": [_("An erased card cannot be merged.")]})

    proposed = proposed_values(cards)
    for name, card_id in (choices or {}).items():
        if name not in MERGE_FIELDS:
            raise ValidationError({name: [_("Unknown field.")]})
        if int(card_id) not in by_id:
            raise ValidationError({name: [_("Choose one of the merged cards.")]})
        proposed[name] = int(card_id)
    if survivor.card_number:
        # The survivor keeps the card it has: every other card's number then resolves to it
        # through an alias, and none is lost.
        if proposed["card_number"] != survivor.pk and "card_number" in (choices or {}):
            raise ValidationError(
                {"card_number": [_("The card that stays keeps its own loyalty card.")]}
            )
        proposed["card_number"] = survivor.pk
    snapshots = {c.pk: card_snapshot(c) for c in cards}
    ids = [c.pk for c in cards]
    latest = _latest_consents(ids)

    customers_merged.send(
        sender=CustomerMerge, survivor_id=survivor.pk, absorbed_ids=absorbed_ids, undone=False
    )
    # Move every row pointing at an absorbed card; remember which, for undo.
    moved: dict[str, dict[str, list[int]]] = {str(c.pk): {} for c in absorbed}
    dropped: dict[str, int] = {}
    CustomerPhone.objects.filter(customer_id__in=absorbed_ids).update(is_primary=False)
    for rel in _relations():
        model, fk = rel.related_model, rel.field.name
        label = model._meta.label_lower
        for card in absorbed:
            rows = list(model.objects.filter(**{fk: card.pk}).values_list("pk", flat=True))
            if not rows:
                continue
            if rel.one_to_one:
                model.objects.filter(pk__in=rows).delete()
                dropped[label] = dropped.get(label, 0) + len(rows)
                continue
            kept = _move(model, fk, rows, survivor.pk)
            moved[str(card.pk)][label] = kept
            if len(kept) < len(rows):
                dropped[label] = dropped.get(label, 0) + len(rows) - len(kept)
    repointed = list(
        MergedAlias.objects.filter(survivor_id__in=absorbed_ids).values_list("pk", flat=True)
    )
    MergedAlias.objects.filter(pk__in=repointed).update(survivor=survivor)
    tags = {t for c in cards for t in c.tags.values_list("pk", flat=True)}

    # Field values, then the absorbed cards go (their unique card numbers with them).
    values = {
        _attname(name): getattr(by_id[card_id], _attname(name))
        for name, card_id in proposed.items()
    }
    emails = [c.email for c in [by_id[proposed["email"]], *cards] if c.email]
    extra = [e for c in cards for e in (c.extra_emails or [])]
    values["extra_emails"] = list(dict.fromkeys(e for e in emails + extra if e != values["email"]))
    values["do_not_contact"] = any(c.do_not_contact for c in cards)
    custom: dict[str, Any] = {}
    ranks = source_ranks()
    for card in sorted(cards, key=lambda c: (ranks.get(c.source, 99), -c.pk), reverse=True):
        custom.update(card.custom_fields or {})
    values["custom_fields"] = custom
    absorbed_cards = {c.pk: c.card_number for c in absorbed}
    DuplicatePair.objects.filter(first_id__in=ids, second_id__in=ids).update(
        status=PairStatus.MERGED, decided_by=actor, decided_at=timezone.now()
    )
    Customer.objects.filter(pk__in=absorbed_ids).delete()
    for attname, value in values.items():
        setattr(survivor, attname, value)
    primary = survivor.phones.filter(is_primary=True).first()
    if primary is None:
        first = survivor.phones.order_by("id").first()
        if first is not None:
            CustomerPhone.objects.filter(pk=first.pk).update(is_primary=True)
            primary = first
    survivor.phone = primary.number if primary else ""
    survivor.save()
    survivor.tags.set(tags)

    merge = CustomerMerge.objects.create(
        survivor=survivor,
        survivor_id_value=survivor.pk,
        absorbed_ids=absorbed_ids,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        snapshot={
            "cards": {str(k): v for k, v in snapshots.items()},
            "moved": moved,
            "repointed": repointed,
            "dropped": dropped,
        },
    )
    MergedAlias.objects.bulk_create(
        MergedAlias(
            old_id=pk,
            old_card_number=card if card and card != survivor.card_number else None,
            survivor=survivor,
            merge=merge,
        )
        for pk, card in absorbed_cards.items()
    )
    # Consent: a withdrawal on any card wins; otherwise a grant on any card holds.
    for channel in Channel.values:
        withdrawn = any(latest.get((pk, channel)) is False for pk in ids)
        granted = any(snapshots[pk][f"consent_{channel}"] for pk in ids) and not withdrawn
        consent_set(
            customer=survivor,
            channel=channel,
            granted=granted,
            source=Source.ADMIN,
            actor=actor,
            note=_("Merge #%(id)s") % {"id": merge.pk},
        )
    survivor.refresh_from_db()
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_MERGE,
        obj=survivor,
        request=request,
        merge=merge.pk,
        absorbed=absorbed_ids,
        before={str(k): v for k, v in snapshots.items()},
        after=card_snapshot(survivor),
        moved={k: {m: len(v) for m, v in rows.items()} for k, rows in moved.items()},
        dropped=dropped,
    )
    return merge


def _move(model: type[models.Model], fk: str, rows: list[int], survivor_id: int) -> list[int]:
    """Repoint rows to the survivor; a row whose twin the survivor already has is dropped."""
    try:
        with transaction.atomic():
            model.objects.filter(pk__in=rows).update(**{f"{fk}_id": survivor_id})
        return rows
    except IntegrityError:
        kept = []
        for pk in rows:
            try:
                with transaction.atomic():
                    model.objects.filter(pk=pk).update(**{f"{fk}_id": survivor_id})
                kept.append(pk)
            except IntegrityError:
                model.objects.filter(pk=pk).delete()
        return kept


def undo_deadline(merge: CustomerMerge) -> dt.datetime:
    return merge.at + dt.timedelta(days=settings.CLIENTELE_MERGE_UNDO_DAYS)


@transaction.atomic
def customer_merge_undo(*, actor, merge: CustomerMerge, request=None) -> list[Customer]:
    """Bring the absorbed cards back with their rows, and the survivor's fields as they were."""
    if not actor.has_perm("customers.change_customer"):
        raise PermissionDenied
    merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise ValidationError(_("This merge has already been undone."))
    if timezone.now() > undo_deadline(merge):
        raise ValidationError(
            _("Merges can be undone within %(days)s days.")
            % {"days": settings.CLIENTELE_MERGE_UNDO_DAYS}
        )
    if merge.survivor_id is None:
        raise ValidationError(_("The surviving card no longer exists."))
    survivor = _scope_cards(actor, [merge.survivor_id])[0]
    if (
        MergedAlias.objects.filter(survivor=survivor)
        .exclude(merge=merge)
        .filter(merge__at__gt=merge.at)
        .exists()
    ):
        raise ValidationError(_("Undo the later merge into this card first."))
    cards = merge.snapshot["cards"]
    MergedAlias.objects.filter(merge=merge).delete()
    before = card_snapshot(survivor)
    survivor_card = cards[str(survivor.pk)]
    # Free the card numbers first: they are unique.
    Customer.objects.filter(pk=survivor.pk).update(card_number=None)
    restored = []
    for pk in merge.absorbed_ids:
        data = cards[str(pk)]
        fields = {k: _restore_value(k, v) for k, v in data.items() if k not in {"tags"}}
        customer = Customer(**fields)
        Customer.objects.bulk_create([customer])
        Customer.objects.filter(pk=pk).update(
            created_at=fields["created_at"], updated_at=timezone.now()
        )
        customer.tags.set(data["tags"])
        restored.append(customer)
    for card_pk, by_model in merge.snapshot["moved"].items():
        for label, rows in by_model.items():
            model = _model_by_label(label)
            fk = next(r.field.name for r in _relations() if r.related_model is model)
            model.objects.filter(pk__in=rows).update(**{f"{fk}_id": int(card_pk)})
    for alias in MergedAlias.objects.filter(pk__in=merge.snapshot.get("repointed", [])):
        alias.survivor_id = _original_survivor(alias, merge)
        alias.save(update_fields=["survivor"])
    fields = {k: _restore_value(k, v) for k, v in survivor_card.items() if k not in {"tags", "id"}}
    for key, value in fields.items():
        setattr(survivor, key, value)
    survivor.save()
    Customer.objects.filter(pk=survivor.pk).update(updated_at=timezone.now())
    survivor.tags.set(survivor_card["tags"])
    # Primary phones as they were on each card.
    for card in [survivor, *restored]:
        number = cards[str(card.pk)]["phone"]
        CustomerPhone.objects.filter(customer=card).update(is_primary=False)
        if number:
            CustomerPhone.objects.filter(customer=card, number=number).update(is_primary=True)
    merge.undone_at = timezone.now()
    merge.save(update_fields=["undone_at"])
    audit_record(
        actor=actor,
        action=AuditAction.MERGE_UNDO,
        obj=survivor,
        request=request,
        merge=merge.pk,
        restored=merge.absorbed_ids,
        before=before,
        after={str(k): v for k, v in cards.items()},
    )
    customers_merged.send(
        sender=CustomerMerge,
        survivor_id=survivor.pk,
        absorbed_ids=list(merge.absorbed_ids),
        undone=True,
    )
    return restored


def _original_survivor(alias: MergedAlias, merge: CustomerMerge) -> int:
    """An alias repointed by this merge pointed at one of its absorbed cards before."""
    earlier = alias.merge
    target = earlier.survivor_id_value
    return target if target in merge.absorbed_ids else alias.survivor_id


def _model_by_label(label: str) -> type[models.Model]:
    from django.apps import apps

    return apps.get_model(label)


def resolve_alias(pk: int) -> int | None:
    """The card that absorbed card `pk`, if it was merged away."""
    return MergedAlias.objects.filter(old_id=pk).values_list("survivor_id", flat=True).first()


def resolve_card_alias(card_number: str) -> int | None:
    """The card that absorbed the card carrying this old loyalty card number."""
    return (
        MergedAlias.objects.filter(old_card_number=card_number)
        .values_list("survivor_id", flat=True)
        .first()
    )


def card_alias_survivors(card_number: str):
    """Subquery of the card (if any) that absorbed the card carrying this old card number."""
    return MergedAlias.objects.filter(old_card_number=card_number).values("survivor_id")
