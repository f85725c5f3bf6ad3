"""A session that lost its prepared statements (DEALLOCATE ALL, a pooler's DISCARD ALL) heals."""

import pytest
from django.db import ProgrammingError, connection, transaction

from crm.pg.prepared import execute_prepared, prepared_from

STATEMENT = prepared_from("test_heal", "SELECT %s::int + 1")


def run(value: int) -> int:
    with connection.cursor() as cursor:
        execute_prepared(cursor, STATEMENT, [value])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_statement_is_prepared_again_and_run():
    assert run(1) == 2
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert run(2) == 3


@pytest.mark.django_db
def test_inside_a_transaction_the_failure_is_raised_once_and_the_retry_prepares():
    assert run(1) == 2
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(ProgrammingError), transaction.atomic():
        run(2)
    assert run(3) == 4
