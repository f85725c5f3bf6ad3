"""How names are compared in search: folded (upper case, Ё read as Е) and, for ranking, stemmed
to the masculine form of a surname. Each rule has a Python twin (for the query words) and a SQL
twin (for the columns); the indexes in `customers.models` are built on the SQL expressions, so
the planner matches them only while these templates stay exactly as they are.
"""

import re

from django.db.models import CharField, Func

_FEMININE_OV = re.compile(r"(ОВ|ЕВ|ИН|ЫН)А$")
_FEMININE_SKAYA = re.compile(r"([СЦ])КАЯ$")


def fold(text: str) -> str:
    """The form names are compared in: upper case, with Ё read as Е (people type "Петр")."""
    return text.upper().replace("Ё", "Е")


def surname_stem_of(word: str) -> str:
    """The masculine form of a folded surname: ИВАНОВА -> ИВАНОВ, ПЕТРОВСКАЯ -> ПЕТРОВСКИЙ."""
    return _FEMININE_SKAYA.sub(r"\1КИЙ", _FEMININE_OV.sub(r"\1", word))


class Fold(Func):
    """SQL twin of `fold()`."""

    template = "TRANSLATE(UPPER(%(expressions)s), 'Ё', 'Е')"
    output_field = CharField()


class SurnameStem(Func):
    """SQL twin of `surname_stem_of()`, applied to a folded surname."""

    template = (
        "REGEXP_REPLACE(REGEXP_REPLACE(%(expressions)s, '(ОВ|ЕВ|ИН|ЫН)А$', '\\1'),"
        " '([СЦ])КАЯ$', '\\1КИЙ')"
    )
    output_field = CharField()
