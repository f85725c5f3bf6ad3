"""Did it work? Recipients against the holdout within the attribution window.

Method, so the figures can be checked by hand:

- Groups are intention-to-treat: *recipients* are every message row of the campaign not held
  out (sent, or skipped at send time), *holdout* the rows held out. Both were drawn by the same
  hash from the same contactable customers, so comparing them is fair; comparing only the
  messages actually sent would flatter the campaign.
- Each row's window starts when its row was created (the run) and lasts
  ``Campaign.attribution_days``. Per row: responded = bought at all in the window (0/1); revenue
  and margin = the receipt lines bought in the window minus what was returned from those
  receipts before the window closed.
- Uplift of a figure = mean(recipients) - mean(holdout). Its 95% confidence interval uses the
  normal approximation with Welch's standard error,
  ``se = sqrt(s1^2/n1 + s2^2/n2)`` (sample variances), ``uplift +/- 1.96 * se``; it is left out
  when a group has fewer than two rows.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from campaigns.models import Campaign, MessageState

Z95 = 1.959963984540054

RESULTS_SQL = """
WITH m AS (
    SELECT id, customer_id, state = 'holdout' AS holdout, created_at AS start,
           created_at + make_interval(days => %(days)s) AS stop
    FROM campaigns_message
    WHERE campaign_id = %(campaign)s
),
bought AS (
    SELECT m.id, count(DISTINCT r.id) AS receipts,
           coalesce(sum(l.amount), 0) AS revenue, coalesce(sum(l.margin), 0) AS margin
    FROM m
    LEFT JOIN sales_receipt r
           ON r.customer_id = m.customer_id AND r.purchased_at >= m.start
          AND r.purchased_at < m.stop
    LEFT JOIN sales_receiptline l ON l.receipt_id = r.id
    GROUP BY m.id
),
returned AS (
    SELECT m.id, sum(rl.amount) AS revenue, sum(rl.margin) AS margin
    FROM m
    JOIN sales_receipt r
      ON r.customer_id = m.customer_id AND r.purchased_at >= m.start AND r.purchased_at < m.stop
    JOIN sales_return rt ON rt.receipt_id = r.id AND rt.returned_at < m.stop
    JOIN sales_returnline rl ON rl.return_doc_id = rt.id
    GROUP BY m.id
),
per AS (
    SELECT m.holdout, (b.receipts > 0)::int AS responded,
           b.revenue - coalesce(x.revenue, 0) AS revenue,
           b.margin - coalesce(x.margin, 0) AS margin
    FROM m JOIN bought b ON b.id = m.id LEFT JOIN returned x ON x.id = m.id
)
SELECT holdout, count(*),
       avg(responded), coalesce(var_samp(responded), 0),
       avg(revenue), coalesce(var_samp(revenue), 0),
       avg(margin), coalesce(var_samp(margin), 0),
       sum(revenue), sum(margin)
FROM per GROUP BY holdout
"""


@dataclass
class Figure:
    name: str
    recipients: float | None
    holdout: float | None
    uplift: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass
class Results:
    campaign_id: int
    recipients: int
    holdout: int
    figures: list[Figure]
    counts: dict[str, int]
    revenue_recipients: Decimal
    revenue_holdout: Decimal


# What a holdout must be able to show: a change of the response rate of this many percentage
# points, at 95% confidence (two-sided) and 80% power.
DETECTABLE_UPLIFT = 0.02
Z80 = 0.8416212335729143
ASSUMED_RESPONSE_RATE = 0.10


@dataclass
class HoldoutCheck:
    """Whether the holdout can measure anything, and the size it would need."""

    too_small: bool
    needed: int
    audience_needed: int | None  # at the campaign's holdout share; None without a holdout


def holdout_needed(response_rate: float | None) -> int:
    """People per group to detect DETECTABLE_UPLIFT in a response rate near `response_rate`.

    The usual two-proportion sample size, n = (z95 + z80)^2 * 2 p (1 - p) / delta^2, with p the
    recipients' observed rate (or 10% before there is one).
    """
    p = response_rate if response_rate and 0.0 < response_rate < 1.0 else ASSUMED_RESPONSE_RATE
    return math.ceil((Z95 + Z80) ** 2 * 2 * p * (1 - p) / DETECTABLE_UPLIFT**2)


def holdout_check(*, campaign: Campaign, results: Results) -> HoldoutCheck:
    """Too small when the holdout has fewer people than `holdout_needed` says."""
    needed = holdout_needed(results.figures[0].recipients if results.figures else None)
    share = float(campaign.holdout_share)
    audience = math.ceil(needed / share) if share > 0 else None
    return HoldoutCheck(results.holdout < needed, needed, audience)


def _uplift(name, t, h) -> Figure:
    """t, h: (n, mean, variance) or None."""
    if not t or not h:
        return Figure(name, t[1] if t else None, h[1] if h else None, None, None, None)
    (n1, m1, v1), (n2, m2, v2) = t, h
    uplift = m1 - m2
    if n1 < 2 or n2 < 2:
        return Figure(name, m1, m2, uplift, None, None)
    se = math.sqrt(v1 / n1 + v2 / n2)
    return Figure(name, m1, m2, uplift, uplift - Z95 * se, uplift + Z95 * se)


def campaign_results(*, campaign: Campaign) -> Results:
    """Response, revenue and margin per customer for recipients and holdout, with uplift."""
    with connection.cursor() as cursor:
        cursor.execute(RESULTS_SQL, {"campaign": campaign.pk, "days": campaign.attribution_days})
        rows = {row[0]: row for row in cursor.fetchall()}
        cursor.execute(
            """
            SELECT state, count(*), count(unsubscribed_at) FROM campaigns_message
            WHERE campaign_id = %s GROUP BY state
            """,
            [campaign.pk],
        )
        by_state = cursor.fetchall()
    counts = {state: 0 for state in MessageState.values}
    unsubscribed = 0
    for state, n, unsub in by_state:
        counts[state] = n
        unsubscribed += unsub
    counts["unsubscribed"] = unsubscribed
    counts["delivered"] = counts[MessageState.SENT]
    t, h = rows.get(False), rows.get(True)

    def stats(row, i):
        return (row[1], float(row[i]), float(row[i + 1])) if row else None

    figures = [
        _uplift("response_rate", stats(t, 2), stats(h, 2)),
        _uplift("revenue_per_customer", stats(t, 4), stats(h, 4)),
        _uplift("margin_per_customer", stats(t, 6), stats(h, 6)),
    ]
    return Results(
        campaign_id=campaign.pk,
        recipients=t[1] if t else 0,
        holdout=h[1] if h else 0,
        figures=figures,
        counts=counts,
        revenue_recipients=t[8] if t else Decimal("0"),
        revenue_holdout=h[8] if h else Decimal("0"),
    )


def results_csv(results: Results) -> str:
    """The results as CSV: one row per figure, then the counts (no personal data)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["figure", "recipients", "holdout", "uplift", "ci95_low", "ci95_high"])
    for f in results.figures:
        writer.writerow(
            [
                f.name,
                *("" if v is None else f"{v:.6f}" for v in (f.recipients, f.holdout)),
                *("" if v is None else f"{v:.6f}" for v in (f.uplift, f.ci_low, f.ci_high)),
            ]
        )
    writer.writerow([])
    writer.writerow(["group_size_recipients", results.recipients])
    writer.writerow(["group_size_holdout", results.holdout])
    for name, n in results.counts.items():
        writer.writerow([name, n])
    return out.getvalue()
