"""The numpy cut points agree with PostgreSQL's window functions on tie-heavy data."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from django.db import connection

from analytics import ranking

pytestmark = pytest.mark.django_db

SQL_CUTS = """
SELECT DISTINCT ON (score) score, {keys} FROM (
    SELECT ntile(5) OVER (ORDER BY {keys}) AS score, {keys} FROM buyers
) scored
WHERE score > 1 ORDER BY score, {keys}
"""
SQL_VIP = """
SELECT rn, revenue_window, customer_id FROM (
    SELECT customer_id, revenue_window, row_number() OVER w AS rn,
           sum(revenue_window) OVER w - revenue_window AS before,
           sum(revenue_window) OVER () AS total, count(*) OVER () AS n
    FROM buyers WHERE revenue_window > 0
    WINDOW w AS (ORDER BY revenue_window DESC, customer_id)
) ranked
WHERE before < %s * total AND rn <= floor(%s * n)
ORDER BY rn DESC LIMIT 1
"""


def random_buyers(n: int, seed: int) -> ranking.Buyers:
    rng = np.random.default_rng(seed)
    base = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
    return ranking.Buyers(
        ids=np.arange(1, n + 1, dtype=np.int64) * 7,
        receipts=rng.integers(1, 4, n),
        revenue=rng.choice([50_000, 50_000, 120_000, -3_000, 0, 99_999], n),
        revenue_window=rng.choice([0, 50_000, 50_000, 120_000, 7_77], n),
        last_at=base + rng.choice([0, 86_400_000_000, 123_456], n),
        t_x=np.zeros(n),
        age=np.zeros(n),
    )


def load(buyers: ranking.Buyers) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE buyers (customer_id bigint, receipts bigint, revenue numeric, "
            "revenue_window numeric, last_at timestamptz)"
        )
        cursor.executemany(
            "INSERT INTO buyers VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    int(i),
                    int(r),
                    Decimal(int(m)).scaleb(-2),
                    Decimal(int(w)).scaleb(-2),
                    ranking.EPOCH + dt.timedelta(microseconds=int(t)),
                )
                for i, r, m, w, t in zip(
                    buyers.ids,
                    buyers.receipts,
                    buyers.revenue,
                    buyers.revenue_window,
                    buyers.last_at,
                    strict=True,
                )
            ],
        )


def as_json(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01")))
    return value


@pytest.mark.parametrize("n", [1, 3, 5, 7, 250])
def test_rfm_cuts_equal_ntile_over_the_same_rows(n):
    buyers = random_buyers(n, seed=n)
    load(buyers)
    got = ranking.rfm_cuts(buyers)
    with connection.cursor() as cursor:
        for kind, keys in ranking.RFM_KEYS.items():
            cursor.execute(SQL_CUTS.format(keys=", ".join(keys)))
            expected = [[as_json(v) for v in row[1:]] for row in cursor.fetchall()]
            assert got[kind] == expected, kind


SQL_SCORES = """
SELECT customer_id, ntile(5) OVER (ORDER BY {keys}) FROM buyers ORDER BY customer_id
"""


@pytest.mark.parametrize("n", [1, 4, 6, 250])
def test_rfm_scores_equal_ntile_over_the_same_rows(n):
    buyers = random_buyers(n, seed=50 + n)
    load(buyers)
    _cuts, scores = ranking.rfm_ranks(buyers)
    with connection.cursor() as cursor:
        for kind, keys in ranking.RFM_KEYS.items():
            cursor.execute(SQL_SCORES.format(keys=", ".join(keys)))
            expected = cursor.fetchall()
            got = [(int(i), int(score)) for i, score in zip(buyers.ids, scores[kind], strict=True)]
            assert got == expected, kind


@pytest.mark.parametrize(
    ("n", "share", "cap"),
    [(1, "0.8", "0.2"), (10, "0.8", "0.2"), (250, "0.8", "0.2"), (250, "0.5", "1"), (40, "1", "1")],
)
def test_vip_entry_equals_the_window_query(n, share, cap):
    buyers = random_buyers(n, seed=100 + n)
    load(buyers)
    got = ranking.vip_entry(
        buyers.ids, buyers.revenue_window, share=Decimal(share), cap=Decimal(cap)
    )
    with connection.cursor() as cursor:
        cursor.execute(SQL_VIP, [Decimal(share), Decimal(cap)])
        row = cursor.fetchone()
    expected = None if row is None else (row[0], int(row[1] * 100), row[2])
    assert got == expected


def test_vip_boundary_is_exact_where_floating_point_would_not_be():
    # 0.7 of 10 kopecks is 7 exactly; as binary floats 0.7 * 10 < 7 would let the third in.
    ids = np.array([1, 2, 3], dtype=np.int64)
    revenue = np.array([4, 3, 3], dtype=np.int64)
    assert ranking.vip_entry(ids, revenue, share=Decimal("0.7"), cap=Decimal("1")) == (2, 3, 2)
