"""Segment rule trees: their schema, validation, and compilation to one SQL query.

A rule tree is JSON of two node types::

    {"op": "and" | "or" | "not", "rules": [node, ...]}   # "not" negates the AND of its rules
    {"field": "<name>", "op": "<operator>", "value": ..., ...}   # a condition

`FIELDS` is the schema: which fields exist, which operators each takes and what value they
need. `compile_rules` turns a valid tree into a `Q` whose relational parts are correlated
`EXISTS` subqueries, so `visible_customers(user).filter(q)` is one statement whatever the tree,
and a customer is never evaluated in Python.
"""

from .compile import birthday_q, compile_rules, segment_customers
from .schema import (
    FIELD_OP_LABELS,
    FIELDS,
    GROUP_OPS,
    OP_LABELS,
    choice_labels,
    clean_rules,
    plain_json,
    validate_rules,
)

__all__ = [
    "FIELD_OP_LABELS",
    "FIELDS",
    "OP_LABELS",
    "choice_labels",
    "GROUP_OPS",
    "birthday_q",
    "clean_rules",
    "compile_rules",
    "plain_json",
    "segment_customers",
    "validate_rules",
]
