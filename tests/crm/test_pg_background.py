"""crm.pg.background: statements the server runs while Python works."""

import pytest
from django.db import DatabaseError, connection

from crm.pg import background

pytestmark = pytest.mark.django_db


def _value(sql: str):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_statements_run_in_the_session_with_their_parameters():
    statements = [
        ("CREATE TEMP TABLE bg_probe (n int, label text)", None),
        (
            "INSERT INTO bg_probe SELECT g, %(label)s FROM generate_series(1, %(n)s) g",
            {"label": "it's 100%", "n": 3},
        ),
    ]
    with background.running(statements):
        worked = sum(range(1000))  # the block does Python work only
    assert worked == 499500
    # The temporary table belongs to this session, and the quote and percent sign survived.
    assert _value("SELECT count(*) FROM bg_probe WHERE label = 'it''s 100%'") == 3


def test_an_error_in_a_statement_is_raised_when_the_block_ends():
    with pytest.raises(DatabaseError):
        with background.running([("SELECT 1 / 0", None)]):
            pass
