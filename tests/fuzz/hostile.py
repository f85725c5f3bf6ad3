"""Hypothesis strategies for what a hostile or clumsy client sends.

Strings with NUL, lone surrogates, 10,000 characters, emoji and right-to-left marks; numbers
at and just past every column's range (smallint, integer, bigint, numeric(12,3) and (14,2)),
NaN, Infinity and 1e999999; dates in years 1 and 9999 and impossible ones; time-zone offsets
no country uses; values of the wrong JSON type; nesting deeper than any parser likes.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Edges of the columns behind the forms and the API, and one step past each.
_INT_EDGES = [
    0,
    -1,
    1,
    32767,
    32768,
    -32769,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**20,
    10**400,
]
_DECIMAL_TEXT = [
    "99999999.999",
    "999999999.999",
    "999999999999.99",
    "1000000000000",
    "9999999999999999999999999999.99",
    "0.001",
    "0.0001",
    "-0.01",
    "1e999999",
    "-1e999999",
    "1E-999999",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1_000",
    "1,5",
    "０１２",  # full-width digits
    "٣",  # Arabic-Indic three
    "0x10",
    "1e3",
    " 12 ",
]
_DATES = [
    "0001-01-01",
    "0001-01-05",
    "9999-12-01",
    "9999-12-31",
    "10000-01-01",
    "0000-00-00",
    "2025-02-30",
    "2025-13-01",
    "1899-12-31",
    "2201-01-01",
    "-2025-01-01",
    "2025-1-1",
    "01.02.2025",
    "31.12.9999",
    "2025-01-01T00:00:00+99:00",
    "2025-01-01T00:00:00+23:59",
    "2025-01-01T00:00:00-23:59",
    "2025-01-01T00:00:00+16:56",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2025-01-01T24:00:00Z",
    "2025-01-01T00:00:00",
    "2025-06-01T12:00:00.9999999+03:00",
]
_SPECIAL_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\ufeff",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "😀👨‍👩‍👧‍👦🏳️‍🌈",
    "Ё" * 101,
    "x" * 10_000,
    "😀" * 10_000,
    "' OR 1=1 --",
    "%00",
    "%s%n%x",
    "{{ request }}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\r\nSet-Cookie: x=1",
    "null",
    "true",
    "[]",
    "{}",
    "-1",
    "0",
    "1.5",
]


def hostile_text() -> st.SearchStrategy[str]:
    """Strings a column or a parser may choke on (and ordinary ones, so valid paths run too)."""
    return st.one_of(
        st.sampled_from(_SPECIAL_TEXT),
        st.sampled_from(_DATES),
        st.sampled_from(_DECIMAL_TEXT),
        st.integers().map(str),
        st.sampled_from(_INT_EDGES).map(str),
        st.text(max_size=40),
        st.text(
            alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
            max_size=20,
        ),
    )


def hostile_number() -> st.SearchStrategy:
    """JSON numbers and numeric strings at and past the edges."""
    return st.one_of(
        st.sampled_from(_INT_EDGES),
        st.sampled_from(_DECIMAL_TEXT),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    )


def hostile_date() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(_DATES),
        st.dates().map(lambda d: d.isoformat()),
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    )


def deep(depth: int, leaf="x"):
    """A list nested `depth` times."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def wrong_json() -> st.SearchStrategy:
    """Values of every JSON type, including ones nested deeper than any schema allows."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        hostile_number(),
        hostile_text(),
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=3),
        st.dictionaries(st.text(max_size=5), scalars, max_size=3),
        st.sampled_from([deep(200), {"a": deep(50)}, [[]] * 3]),
    )


def hostile_json_value() -> st.SearchStrategy:
    return st.one_of(hostile_text(), hostile_number(), hostile_date(), wrong_json())


def hostile_form_value() -> st.SearchStrategy[str | list[str]]:
    """What a form field may receive: one string, or several values for the same name."""
    single = st.one_of(hostile_text(), hostile_date(), hostile_number().map(str))
    return st.one_of(single, st.lists(single, min_size=2, max_size=3))
