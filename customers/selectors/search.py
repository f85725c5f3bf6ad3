"""Search of customers: the list's box, the till's look-up, Latin typed for Cyrillic names.

Every function starts from `customers.access.visible_customers(user)` (or `lookup_customers` for an
exact phone or card at the till), so nothing here can reach a customer the user may not see.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.postgres.search import TrigramSimilarity
from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet, Value
from django.db.models.functions import Greatest, Upper

from customers.access import lookup_customers, visible_customers

from ..folding import Fold, SurnameStem, fold, surname_stem_of
from ..models import Customer, CustomerPhone
from ..phones import try_normalize_phone

# Latin -> Cyrillic for Russian names typed on a Latin keyboard ("Ivanova" -> "ИВАНОВА");
# longest sequences first so "shch" is not read as "s" + "h" + ...
_TRANSLIT = [
    ("SHCH", "Щ"),
    ("SCH", "Щ"),
    ("YO", "Ё"),
    ("ZH", "Ж"),
    ("KH", "Х"),
    ("TS", "Ц"),
    ("CH", "Ч"),
    ("SH", "Ш"),
    ("YU", "Ю"),
    ("YA", "Я"),
    ("YE", "Е"),
    ("IA", "ИЯ"),
    ("IY", "ИЙ"),
    ("EY", "ЕЙ"),
    ("AY", "АЙ"),
    ("OY", "ОЙ"),
    ("UY", "УЙ"),
    ("A", "А"),
    ("B", "Б"),
    ("C", "К"),
    ("D", "Д"),
    ("E", "Е"),
    ("F", "Ф"),
    ("G", "Г"),
    ("H", "Х"),
    ("I", "И"),
    ("J", "Дж"),
    ("K", "К"),
    ("L", "Л"),
    ("M", "М"),
    ("N", "Н"),
    ("O", "О"),
    ("P", "П"),
    ("Q", "К"),
    ("R", "Р"),
    ("S", "С"),
    ("T", "Т"),
    ("U", "У"),
    ("V", "В"),
    ("W", "В"),
    ("X", "КС"),
    ("Y", "Ы"),
    ("Z", "З"),
]
_LATIN = re.compile(r"[A-Z]")
_IDENTIFIER = re.compile(r"^[+\d][\d\s()+\-.]*$")


def latin_to_cyrillic(text: str) -> str:
    """Upper-case Cyrillic reading of a Latin-typed Russian name."""
    text = text.upper()
    out = []
    i = 0
    while i < len(text):
        for latin, cyrillic in _TRANSLIT:
            if text.startswith(latin, i):
                out.append(cyrillic.upper())
                i += len(latin)
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _name_tokens(query: str) -> list[list[str]]:
    """Each word of the query with its spellings to try (as typed, and Cyrillic if Latin),
    folded (see `fold`)."""
    tokens = []
    for word in re.split(r"[\s,]+", query.upper()):
        word = word.strip(".-'\"")
        if not word:
            continue
        variants = [fold(word)]
        if _LATIN.search(word):
            variants.append(fold(latin_to_cyrillic(word)))
        tokens.append(variants)
    return tokens[:4]


def _field_matches(field: str, variants: list[str]) -> Q:
    # `%` (trigram similarity) tolerates typos and `LIKE 'X%'` catches short fragments; both
    # use the GIN trigram indexes on the folded surname and first name.
    condition = Q()
    for variant in variants:
        condition |= Q(**{f"{field}__trigram_similar": variant})
        condition |= Q(**{f"{field}__startswith": variant})
    return condition


def _name_filter(tokens: list[list[str]]) -> Q:
    """Surname and first name in either order; one word matches either of them.

    Pairing the words with the two fields (rather than letting every word match either field)
    lets PostgreSQL AND two small index bitmaps instead of scanning every "Анна" in the base.
    """
    if len(tokens) == 1:
        return _field_matches("surname_folded", tokens[0]) | _field_matches(
            "first_name_folded", tokens[0]
        )
    first, second = tokens[0], tokens[1]
    condition = (
        _field_matches("surname_folded", first) & _field_matches("first_name_folded", second)
    ) | (_field_matches("surname_folded", second) & _field_matches("first_name_folded", first))
    # A third word (a patronymic, usually) narrows further but is not required to be indexed.
    for extra in tokens[2:]:
        condition &= Q(patronymic_folded__startswith=extra[0]) | _field_matches(
            "surname_folded", extra
        )
    return condition


PARTIAL_PHONE_MIN_DIGITS = 4
PARTIAL_PHONE_OWNERS = 200


def _identifier_filter(query: str) -> Q:
    # The phone's owner is looked up first and inlined as an id: with `OR id IN (subquery)`
    # PostgreSQL falls back to a sequential scan, while `card = x OR id = y` is two index probes.
    condition = Q(card_number=re.sub(r"[\s\-()]", "", query))
    phone = try_normalize_phone(query)
    owners: list[int] = []
    if phone:
        owners = list(
            CustomerPhone.objects.filter(number=phone).values_list("customer_id", flat=True)
        )
    digits = re.sub(r"\D", "", query)
    if not owners and PARTIAL_PHONE_MIN_DIGITS <= len(digits) <= 10:
        # A fragment of a number ("5612", "529-56-12"): the trigram index on the numbers finds
        # them; bounded, since four digits can match hundreds of phones at a million cards.
        owners = list(
            CustomerPhone.objects.filter(number__contains=digits).values_list(
                "customer_id", flat=True
            )[:PARTIAL_PHONE_OWNERS]
        )
    if owners:
        condition |= Q(pk__in=owners)
    return condition


def _search_filter(query: str) -> tuple[str, Q, dict[str, Any]]:
    """The kind of query (phone/card/email/name), its filter, and the annotations it needs."""
    query = query.strip()
    if "@" in query:
        return "email", Q(email_upper=query.upper()), {"email_upper": Upper("email")}
    if _IDENTIFIER.match(query):
        return "identifier", _identifier_filter(query), {}
    tokens = _name_tokens(query)
    if not tokens:
        return "none", Q(pk__in=[]), {}
    return (
        "name",
        _name_filter(tokens),
        {
            "surname_folded": Fold("surname"),
            "first_name_folded": Fold("first_name"),
            "patronymic_folded": Fold("patronymic"),
        },
    )


def _name_rank(query: str) -> tuple[Any, Any]:
    """(exact prefix hit, similarity): prefix matches first, then the closest spellings.

    Similarity is taken against the surname's stem, so ИВАНОВ and ИВАНОВА score the same.
    """
    rank = Value(0.0)
    prefix = Q(pk__in=[])
    stem = SurnameStem(Fold("surname"))
    for variants in _name_tokens(query):
        for variant in variants:
            rank = rank + Greatest(
                TrigramSimilarity(stem, Value(surname_stem_of(variant))),
                TrigramSimilarity(Fold("first_name"), Value(variant)),
            )
            prefix |= Q(surname_folded__startswith=variant) | Q(
                first_name_folded__startswith=variant
            )
    return ExpressionWrapper(prefix, output_field=BooleanField()), rank


def customer_search(*, user, query: str, queryset: QuerySet[Customer] | None = None):
    """Visible customers matching one search box: phone in any format (or a fragment of one),
    card, email or name (Ё/Е alike, Latin or Cyrillic, with typos)."""
    customers = queryset if queryset is not None else visible_customers(user)
    query = (query or "").strip()
    if not query:
        return customers
    kind, condition, annotations = _search_filter(query)
    customers = (
        customers.annotate(**annotations).filter(condition)
        if annotations
        else (customers.filter(condition))
    )
    if kind == "name":
        prefix, rank = _name_rank(query)
        customers = customers.annotate(
            prefix_hit=prefix, rank=rank, surname_stem=SurnameStem(Fold("surname"))
        ).order_by(
            F("prefix_hit").desc(), "-rank", "surname_stem", "first_name_folded", "surname", "id"
        )
    return customers


def customer_lookup(*, user, query: str) -> list[Customer]:
    """Customers outside the user's own list found by an exact phone or card (till look-up).

    The caller shows only the minimal, masked card for these.
    """
    query = (query or "").strip()
    if not query or not _IDENTIFIER.match(query) or not user.has_perm("customers.lookup_customers"):
        return []
    visible = visible_customers(user).values("pk")
    return list(
        lookup_customers(user)
        .filter(_identifier_filter(query))
        .exclude(pk__in=visible)
        .select_related("home_store")
        .only("pk", "surname", "first_name", "phone", "card_number", "home_store__name")[:5]
    )
