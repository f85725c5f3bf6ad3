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


@pytest.mark.django_db(transaction=True)
def test_a_second_connection_runs_them_beside_this_session_and_commits_them_together():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bg_shared (n int)")
    try:
        with background.second_connection() as other:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            assert pid != _value("SELECT pg_backend_pid()")
            with background.running(
                [("INSERT INTO bg_shared VALUES (%s)", [1]), ("SELECT pg_sleep(0.2)", None)],
                using=other,
            ):
                # This session works meanwhile, and does not see the rows before the commit.
                assert _value("SELECT count(*) FROM bg_shared") == 0
            assert _value("SELECT count(*) FROM bg_shared") == 1
            with pytest.raises(DatabaseError):
                with background.running(
                    [("INSERT INTO bg_shared VALUES (2)", None), ("SELECT 1 / 0", None)],
                    using=other,
                ):
                    pass
        # The failed block's statements went back together, and the connection is closed.
        assert _value("SELECT count(*) FROM bg_shared") == 1
        assert other.connection is None
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bg_shared")
