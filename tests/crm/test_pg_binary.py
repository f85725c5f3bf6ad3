"""crm.pg.binary: numpy columns in and out with binary COPY."""

import numpy as np
import pytest
from django.db import DataError, connection

from crm.pg import binary

pytestmark = pytest.mark.django_db

KOPECKS = [0, 1, -1, 5, 50, 99, 100, 101, -100, 12345, -12345, 10**12, 123456789012]
KOPECKS += [99_999_999_999_999, -99_999_999_999_999, 2**40 + 7, 2**62, -(2**62)]


def test_kopecks_arrive_as_the_numeric_sql_makes_of_them():
    """Byte for byte (numeric_send) what `kopecks * 0.01` gives, into a plain numeric column and
    into a numeric(14, 2) one."""
    fits = [k for k in KOPECKS if abs(k) < 10**14]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bin_probe (n bigint, plain numeric, money numeric(14, 2))"
        )
        binary.copy_in(
            "bin_probe",
            [("n", "int8"), ("plain", "kopecks")],
            [np.arange(len(KOPECKS)), np.array(KOPECKS, dtype=np.int64)],
        )
        binary.copy_in(
            "bin_probe",
            [("n", "int8"), ("money", "kopecks")],
            [np.arange(len(fits)), np.array(fits, dtype=np.int64)],
        )
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE numeric_send(coalesce(p.plain, p.money))
                                          = numeric_send(CASE WHEN p.plain IS NULL
                                                              THEN (u.k * 0.01)::numeric(14, 2)
                                                              ELSE u.k * 0.01 END)),
                   count(*)
            FROM bin_probe p
            JOIN unnest(%s::bigint[]) WITH ORDINALITY AS u(k, i) ON i - 1 = p.n
            WHERE p.plain IS NOT NULL OR u.k = ANY(%s::bigint[])
            """,
            [KOPECKS, fits],
        )
        same, rows = cursor.fetchone()
    assert rows == len(KOPECKS) + len(fits)
    assert same == rows


def test_kopecks_beyond_the_columns_precision_fail_as_in_sql():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bin_money (money numeric(14, 2))")
    with pytest.raises(DataError, match="numeric field overflow"):
        binary.copy_in("bin_money", [("money", "kopecks")], [np.array([10**14], dtype=np.int64)])
