"""Search of customers: the list's box, the till's look-up, Latin typed for Cyrillic names.

Every function starts from `customers.access.visible_customers(user)` (or `lookup_customers` for an
exact phone or card at the till), so nothing here can reach a customer the user may not see.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.search import TrigramSimilarity
from django.core.exceptions import EmptyResultSet
from django.db.models import (
    BooleanField,
    CharField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Greatest, Upper

from customers.access import lookup_customers, visible_customers

from ..folding import Fold, SurnameStem, fold, surname_stem_of
from ..models import Customer, CustomerPhone, NameToken
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


# A word matching more dictionary names than this (one or two letters: "И") is matched on the
# cards themselves, as before the dictionary; the page would be "10 000+" rows either way.
NAME_TOKEN_CAP = 500


@dataclass(frozen=True)
class NameMatches:
    """The dictionary names each query word matches, and what ranking needs of them.

    `surnames[i]` / `first_names[i]`: the folded names word i matches (any of its spellings);
    `scores`: per spelling of every word, name -> similarity (surname stems for surnames), as the
    rank adds them up; `prefixes`: names some spelling is a prefix of; `stems`: surname -> stem.
    """

    surnames: list[set[str]]
    first_names: list[set[str]]
    surname_scores: list[dict[str, float]]
    first_scores: list[dict[str, float]]
    prefix_surnames: set[str]
    prefix_first_names: set[str]
    stems: dict[str, str]


def _dictionary_matches(tokens: list[list[str]]) -> NameMatches | None:
    """Match the words against the dictionary of distinct names (customers.models.NameToken) in
    one query, or None when they match too many names to be worth it."""
    annotations: dict[str, Any] = {"stem": SurnameStem(F("token"))}
    spellings = [(i, v) for i, variants in enumerate(tokens) for v in variants]
    for n, (_, variant) in enumerate(spellings):
        matches = Q(token__trigram_similar=variant) | Q(token__startswith=variant)
        annotations[f"m{n}"] = ExpressionWrapper(matches, output_field=BooleanField())
        annotations[f"p{n}"] = ExpressionWrapper(
            Q(token__startswith=variant), output_field=BooleanField()
        )
        annotations[f"s{n}"] = TrigramSimilarity(
            SurnameStem(F("token")), Value(surname_stem_of(variant))
        )
        annotations[f"f{n}"] = TrigramSimilarity("token", Value(variant))
    # One index probe per spelling, united: with all of them OR-ed in one WHERE the planner
    # walks the whole unique index instead of the trigram one.
    words: list[str] = []
    patterns: list[str] = []
    for _, variant in spellings:
        escaped = variant.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        words.append(variant)
        patterns.append(escaped + "%")
    # One trigram-index probe per spelling in a database function (migration 0011) that runs
    # with the sequential scan off: the dictionary is small enough that the planner prices a
    # scan of it below the trigram index, not knowing that `%` on every row costs far more (a
    # few tens of milliseconds against one). In a function, the setting holds for that one
    # statement, with no round trips to set and restore it.
    candidates = RawSQL(  # noqa: S611 - a fixed statement, values bound
        "SELECT customers_name_token_ids(%s::text[], %s::text[])", [words, patterns]
    )
    rows = list(
        NameToken.objects.filter(pk__in=candidates)
        .annotate(**annotations)
        .values("kind", "token", *annotations)[: NAME_TOKEN_CAP + 1]
    )
    if len(rows) > NAME_TOKEN_CAP:
        return None
    found = NameMatches(
        surnames=[set() for _ in tokens],
        first_names=[set() for _ in tokens],
        surname_scores=[{} for _ in spellings],
        first_scores=[{} for _ in spellings],
        prefix_surnames=set(),
        prefix_first_names=set(),
        stems={},
    )
    for row in rows:
        surname = row["kind"] == NameToken.SURNAME
        token = row["token"]
        if surname:
            found.stems[token] = row["stem"]
        for n, (word, _) in enumerate(spellings):
            if row[f"m{n}"]:
                (found.surnames if surname else found.first_names)[word].add(token)
            if row[f"p{n}"]:
                (found.prefix_surnames if surname else found.prefix_first_names).add(token)
            if surname:
                found.surname_scores[n][token] = row[f"s{n}"]
            else:
                found.first_scores[n][token] = row[f"f{n}"]
    return found


class _Lookup(Func):
    """`map ->> key` of a JSON object passed as a parameter, as a float (0 when absent)."""

    template = "COALESCE((%(expressions)s)::float, 0)"
    arg_joiner = " ->> "
    output_field = FloatField()


class _TextLookup(Func):
    template = "COALESCE(%(expressions)s, '')"
    arg_joiner = " ->> "
    output_field = CharField()


def _json(values: dict[str, Any]) -> Func:
    return Func(Value(json.dumps(values, ensure_ascii=False)), template="%(expressions)s::jsonb")


def _field_in(name: str, values: set[str]) -> Q:
    return Q(**{f"{name}__in": sorted(values)}) if values else Q(pk__in=[])


def _dictionary_filter(tokens: list[list[str]], found: NameMatches) -> Q:
    """`_name_filter` over exact folded names: the cards come by the btree indexes on them."""

    if len(tokens) == 1:
        return _field_in("surname_folded", found.surnames[0]) | _field_in(
            "first_name_folded", found.first_names[0]
        )
    condition = (
        _field_in("surname_folded", found.surnames[0])
        & _field_in("first_name_folded", found.first_names[1])
    ) | (
        _field_in("surname_folded", found.surnames[1])
        & _field_in("first_name_folded", found.first_names[0])
    )
    return condition & _extra_words_filter(tokens, found)


def _extra_words_filter(tokens: list[list[str]], found: NameMatches) -> Q:
    """A third word and on (a patronymic, usually) narrows whatever the first two matched."""
    condition = Q()
    for i, extra in enumerate(tokens[2:], start=2):
        condition &= Q(patronymic_folded__startswith=extra[0]) | _field_in(
            "surname_folded", found.surnames[i]
        )
    return condition


def _dictionary_rank(found: NameMatches) -> tuple[Any, Any, Any]:
    """`_name_rank` read from the dictionary's scores (a JSON look-up per row, not a trigram
    similarity per row), and the surname stem the same way."""
    rank = Value(0.0)
    for surname_scores, first_scores in zip(found.surname_scores, found.first_scores, strict=True):
        rank = rank + Greatest(
            _Lookup(_json(surname_scores), Fold("surname")),
            _Lookup(_json(first_scores), Fold("first_name")),
        )
    # Built only from non-empty sets: `IN ()` would make Django drop the whole query.
    prefix = Q()
    if found.prefix_surnames:
        prefix |= Q(surname_folded__in=sorted(found.prefix_surnames))
    if found.prefix_first_names:
        prefix |= Q(first_name_folded__in=sorted(found.prefix_first_names))
    stem = _TextLookup(_json(found.stems), Fold("surname"))
    # With no prefix hit at all, a never-true column test (a bare FALSE cannot be ordered by).
    prefix = prefix or Q(pk__isnull=True)
    return ExpressionWrapper(prefix, output_field=BooleanField()), rank, stem


# A ranked page walks at most this many (surname, first name) cells; a wider match (two short
# words matching hundreds of names each) ranks every matching card instead, as before.
WALK_CELL_CAP = 5_000


def _walk_cells(tokens: list[list[str]], found: NameMatches) -> list[tuple] | None:
    """The matching cards split into cells whose rank does not vary inside them: (surname, first
    name) pairs of matched names (a), a matched surname with any other first name (b), a matched
    first name with any other surname (c). Each cell is (prefix hit, rank, stem, kind, surname,
    first name), its rank computed as `_dictionary_rank` computes it per card."""
    surnames = sorted(found.stems)
    first_names = sorted(set().union(*found.first_scores))
    if len(surnames) * (len(first_names) + 1) + len(first_names) > WALK_CELL_CAP:
        return None

    def allowed(surname: str | None, first: str | None) -> bool:
        # `_dictionary_filter`'s first two words (any further word narrows inside each cell).
        if len(tokens) == 1:
            return surname in found.surnames[0] or first in found.first_names[0]
        return (surname in found.surnames[0] and first in found.first_names[1]) or (
            surname in found.surnames[1] and first in found.first_names[0]
        )

    def cell(kind: str, surname: str | None, first: str | None) -> tuple:
        rank = 0.0
        for surname_scores, first_scores in zip(
            found.surname_scores, found.first_scores, strict=True
        ):
            rank += max(surname_scores.get(surname, 0.0), first_scores.get(first, 0.0))
        prefix = surname in found.prefix_surnames or first in found.prefix_first_names
        return (prefix, rank, found.stems.get(surname, ""), kind, surname, first)

    cells = [
        cell("a", surname, first)
        for surname in surnames
        for first in first_names
        if allowed(surname, first)
    ]
    cells += [cell("b", surname, None) for surname in surnames if allowed(surname, None)]
    cells += [cell("c", None, first) for first in first_names if allowed(None, first)]
    return cells


_WALK_CELLS = (
    "SELECT w.id FROM (SELECT * FROM unnest(%s::boolean[], %s::float8[], %s::text[],"
    " %s::text[], %s::text[], %s::text[]) AS u(prefix, rank, stem, kind, s, f)"
    " ORDER BY prefix DESC, rank DESC, stem) AS cell"
)
_WALK_ORDER = (
    " ORDER BY cell.prefix DESC, cell.rank DESC, cell.stem, w.first_name_folded, w.surname, w.id"
    " LIMIT %s"
)


def _cell(column: str) -> RawSQL:
    return RawSQL(f'"cell"."{column}"', [])  # noqa: S611 - a fixed column name


def _equal(field: str, column: str) -> dict[str, RawSQL]:
    """`field = cell.column` written as a closed range. The card-side trigram indexes answer
    `=` too, and with the value unknown at planning PostgreSQL prices them below the btree that
    delivers the rows in the page's order (it then sorts thousands of rows per cell); a range
    only a btree answers."""
    return {f"{field}__gte": _cell(column), f"{field}__lte": _cell(column)}


def _walk_ids(
    customers: QuerySet[Customer], tokens: list[list[str]], found: NameMatches, limit: int
) -> RawSQL | None:
    """The ids of the first `limit` cards in rank order, found without ranking every match.

    A common surname's prefix ("Иван", "Кузн") matches tens of thousands of cards at a million,
    and sorting them all for a page of 50 is what made the search slow. Rank depends only on the
    card's (folded surname, folded first name) pair, so the cells of `_walk_cells` are walked in
    rank order, each read through a btree index already in the page's tie order (first name,
    surname, id) and cut at `limit`, and PostgreSQL's incremental sort stops as soon as `limit`
    rows are out: the cost follows the page, not the number of matches. Every branch starts from
    `customers` (the caller's visible, filtered cards), so scope and filters apply per cell.
    None when there are too many cells (the caller ranks every match) or nothing can match.
    """
    cells = _walk_cells(tokens, found)
    if not cells:
        return None
    surnames = sorted(found.stems)
    first_names = sorted(set().union(*found.first_scores))
    base = customers.order_by()
    branches: list[tuple[str, list[Any]]] = []
    kinds = {c[3] for c in cells}
    try:
        if "a" in kinds:
            branch = base.filter(
                RawSQL('"cell"."kind" = \'a\'', [], output_field=BooleanField()),  # noqa: S611
                **_equal("surname_folded", "s"),
                **_equal("first_name_folded", "f"),
            ).order_by("surname_folded", "first_name_folded", "surname", "id")
            branches.append(_branch_sql(branch, limit))
        if "b" in kinds:
            branch = base.filter(
                RawSQL('"cell"."kind" = \'b\'', [], output_field=BooleanField()),  # noqa: S611
                **_equal("surname_folded", "s"),
            )
            if first_names:
                branch = branch.exclude(first_name_folded__in=first_names)
            branch = branch.order_by("surname_folded", "first_name_folded", "surname", "id")
            branches.append(_branch_sql(branch, limit))
        if "c" in kinds:
            branch = base.filter(
                RawSQL('"cell"."kind" = \'c\'', [], output_field=BooleanField()),  # noqa: S611
                **_equal("first_name_folded", "f"),
            )
            if surnames:
                branch = branch.exclude(surname_folded__in=surnames)
            branch = branch.order_by("first_name_folded", "surname", "id")
            branches.append(_branch_sql(branch, limit))
    except EmptyResultSet:
        return None
    columns = list(zip(*cells, strict=True))
    params: list[Any] = [list(column) for column in columns]
    union = " UNION ALL ".join(f"({sql})" for sql, _ in branches)
    for _, branch_params in branches:
        params += branch_params
    params.append(limit)
    # The cells come sorted by the rank's leading keys, so the nested loop's output is too and
    # the final ORDER BY is an incremental sort over one rank group at a time.
    sql = "".join((_WALK_CELLS, " CROSS JOIN LATERAL (", union, ") AS w", _WALK_ORDER))
    return RawSQL(sql, params)  # noqa: S611 - built from the ORM's own SQL and bound values


def _branch_sql(branch: QuerySet[Customer], limit: int) -> tuple[str, list[Any]]:
    sql, params = branch.values("id", "surname", "first_name_folded")[
        :limit
    ].query.sql_with_params()
    return sql, list(params)


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


@dataclass(frozen=True)
class SearchPlan:
    """What one search box asks for: the kind of query (phone/card/email/name), its filter, the
    annotations the filter needs and, for names, the words and what the dictionary matched (None:
    matched on the cards). Made once per request (`search_plan`), applied to as many querysets as
    the page needs (its capped count and its first page)."""

    query: str
    kind: str
    condition: Q
    annotations: dict[str, Any]
    tokens: list[list[str]]
    found: NameMatches | None

    def apply(self, customers: QuerySet[Customer], *, limit: int | None = None):
        """`customers` narrowed to the matches, names ranked; with `limit`, only the first
        `limit` of a ranked name search (see `_walk_ids`), still in rank order."""
        if not self.query:
            return customers
        if self.annotations:
            customers = customers.annotate(**self.annotations)
        unmatched = customers
        customers = customers.filter(self.condition)
        if self.kind != "name":
            return customers
        found = self.found
        if found is None:
            prefix, rank = _name_rank(self.query)
            stem = SurnameStem(Fold("surname"))
        else:
            if limit is not None:
                # The walk's cells stand for the name filter (kept out of the walk, where the
                # planner would answer it with a bitmap of every match); further words stay.
                walk = _walk_ids(
                    unmatched.filter(_extra_words_filter(self.tokens, found)),
                    self.tokens,
                    found,
                    limit,
                )
                if walk is not None:
                    customers = customers.filter(pk__in=walk)
            prefix, rank, stem = _dictionary_rank(found)
        return customers.annotate(prefix_hit=prefix, rank=rank, surname_stem=stem).order_by(
            F("prefix_hit").desc(), "-rank", "surname_stem", "first_name_folded", "surname", "id"
        )


def search_plan(query: str) -> SearchPlan:
    query = (query or "").strip()
    if not query:
        return SearchPlan("", "none", Q(), {}, [], None)
    if "@" in query:
        return SearchPlan(
            query, "email", Q(email_upper=query.upper()), {"email_upper": Upper("email")}, [], None
        )
    if _IDENTIFIER.match(query):
        return SearchPlan(query, "identifier", _identifier_filter(query), {}, [], None)
    tokens = _name_tokens(query)
    if not tokens:
        return SearchPlan(query, "none", Q(pk__in=[]), {}, [], None)
    found = _dictionary_matches(tokens)
    return SearchPlan(
        query,
        "name",
        _name_filter(tokens) if found is None else _dictionary_filter(tokens, found),
        {
            "surname_folded": Fold("surname"),
            "first_name_folded": Fold("first_name"),
            "patronymic_folded": Fold("patronymic"),
        },
        tokens,
        found,
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


def customer_search(
    *, user, query: str, queryset: QuerySet[Customer] | None = None, limit: int | None = None
):
    """Visible customers matching one search box: phone in any format (or a fragment of one),
    card, email or name (Ё/Е alike, Latin or Cyrillic, with typos). `limit`: the caller takes
    only the first rows of a name search (a page, a picker), which is then bounded by them."""
    customers = queryset if queryset is not None else visible_customers(user)
    return search_plan(query).apply(customers, limit=limit)


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
