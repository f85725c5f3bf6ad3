"""Reads of analytics, always scoped to the user.

The dashboard's sales figures are limited to the stores a user may see (`dashboard_store_ids`),
its customer figures to `customers.access.visible_customers(user)`; a user without the dashboard
permission gets a 404 from every entry point, as for an invisible customer.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings as django_settings
from django.db import connection
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Store
from customers.access import user_store_ids, visible_customers

from .models import ClvModelFit, CustomerMetrics, HolidayAffinity, RecomputeRun, ValueClass

ZERO = Decimal("0")


def customer_metrics_for(customer) -> CustomerMetrics | None:
    """The metrics row of a customer the caller already fetched through `visible_customers`."""
    return CustomerMetrics.objects.filter(customer_id=customer.pk).first()


VALUE_EXPLANATIONS = {
    "historical_lcv": _(
        "Margin earned on the customer so far, net of returns, minus the cost of acquiring them."
    ),
    "predicted_clv": _(
        "Margin the models expect the customer to bring over the horizon, discounted to "
        "today: comparable with the LCV."
    ),
    "predicted_clv_fallback": _(
        "Margin the customer would bring over the horizon at the rate of their last year, "
        "discounted: a simple estimate while the model is not trusted."
    ),
    "p_alive": _(
        "The chance the customer still buys from us, judged from how often they bought and "
        "how long they have been away."
    ),
    "expected_purchases_90d": _("Purchase days the models expect in the next 90 days."),
}
VALUE_LABELS = {
    "historical_lcv": _("Historical LCV"),
    "predicted_clv": _("Predicted CLV"),
    "p_alive": _("Probability of being active"),
    "expected_purchases_90d": _("Expected purchases in 90 days"),
}


def customer_value(customer) -> dict:
    """The card's value figures of a (visible) customer, each with a one-line explanation in
    the reader's language; CLV says whether it comes from the model or the fallback."""
    metrics = customer_metrics_for(customer)
    basis = metrics.clv_basis if metrics else ""
    figures = []
    for name, label in VALUE_LABELS.items():
        value = getattr(metrics, name, None) if metrics else None
        key = "predicted_clv_fallback" if name == "predicted_clv" and basis == "fallback" else name
        if isinstance(value, float):
            value = round(value, 4)
        figures.append(
            {
                "figure": name,
                "label": str(label),
                "value": None if value is None else str(value),
                "explanation": str(VALUE_EXPLANATIONS[key]),
            }
        )
    return {
        "customer": customer.pk,
        "currency": django_settings.CLIENTELE_DEFAULT_CURRENCY,
        "clv_basis": basis,
        "fallback_reasons": metrics.clv_fallback_reasons() if metrics else [],
        "figures": figures,
    }


def holiday_affinities_for(customer) -> list[HolidayAffinity]:
    """The holidays a (visible) customer habitually shops before, with the category."""
    return list(HolidayAffinity.objects.filter(customer_id=customer.pk).select_related("category"))


def can_view_dashboard(user) -> bool:
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or user.has_perm("analytics.view_dashboard"))
    )


def can_recompute(user) -> bool:
    """Admins and marketers (chain-wide dashboard readers) may start a full recompute."""
    return can_view_dashboard(user) and (
        user.is_superuser
        or user.has_perm("analytics.change_analyticssettings")
        or user.has_perm("customers.view_all_customers")
    )


def chain_currencies() -> list[str]:
    """Every currency the chain's stores sell in, the default one first."""
    default = django_settings.CLIENTELE_DEFAULT_CURRENCY
    found = set(Store.objects.values_list("currency", flat=True).distinct())
    return [default, *sorted(found - {default})]


def dashboard_store_ids(
    user, store_id: int | None = None, currency: str | None = None
) -> list[int] | None:
    """Stores whose sales the user's dashboard shows: None means every store.

    Store managers see their own stores only; asking for another store is a 404. Money is
    never added across currencies: a chain whose stores sell in several sees one currency at a
    time (`currency`, the default one unless asked), and only the stores that sell in it.
    """
    if not can_view_dashboard(user):
        raise Http404
    chain_wide = user.is_superuser or user.has_perm("customers.view_all_customers")
    own = None if chain_wide else user_store_ids(user)
    if store_id is not None:
        if own is not None and store_id not in own:
            raise Http404
        own = [store_id]
    currencies = chain_currencies()
    if len(currencies) > 1:
        wanted = currency or currencies[0]
        same = set(Store.objects.filter(currency=wanted).values_list("id", flat=True))
        own = sorted(same if own is None else same & set(own))
    return own


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        end = self.start - dt.timedelta(days=1)
        return Period(end - dt.timedelta(days=self.days - 1), end)

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        zone = timezone.get_current_timezone()
        start = dt.datetime.combine(self.start, dt.time.min, tzinfo=zone)
        end = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
        return start, end


def default_period(today: dt.date | None = None) -> Period:
    today = today or timezone.localdate()
    return Period(today - dt.timedelta(days=29), today)


def _rows(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _store_filter(column: str, store_ids: list[int] | None) -> str:
    return f"AND {column} = ANY(%(stores)s)" if store_ids is not None else ""


KPI_NAMES = (
    "revenue",
    "margin",
    "receipts",
    "active_customers",
    "new_customers",
    "repeat_purchase_rate",
    "retention_rate",
    "average_receipt",
    "sales_per_customer",
)


RATE_KPIS = ("repeat_purchase_rate", "retention_rate")
MONEY_KPIS = ("revenue", "margin", "average_receipt", "sales_per_customer")

KPI_LABELS = {
    "revenue": _("Revenue"),
    "margin": _("Margin"),
    "receipts": _("Receipts"),
    "active_customers": _("Active customers"),
    "new_customers": _("New customers"),
    "repeat_purchase_rate": _("Repeat-purchase rate"),
    "retention_rate": _("Retention rate"),
    "average_receipt": _("Average receipt"),
    "sales_per_customer": _("Sales per customer"),
}


def _period_kpis(period: Period, store_ids: list[int] | None) -> dict:
    start, end = period.bounds()
    before_start, _ = period.previous().bounds()
    p = {"start": start, "end": end, "before": before_start, "stores": store_ids}
    stores = _store_filter("store_id", store_ids)
    receipts, gross, active, repeaters, identified = _rows(
        f"""
        SELECT coalesce(sum(n), 0), coalesce(sum(total), 0), count(customer_id),
               count(customer_id) FILTER (WHERE n >= 2),
               coalesce(sum(total) FILTER (WHERE customer_id IS NOT NULL), 0)
        FROM (
            SELECT customer_id, count(*) AS n, sum(total) AS total FROM sales_receipt
            WHERE purchased_at >= %(start)s AND purchased_at < %(end)s {stores}
            GROUP BY customer_id
        ) per_customer
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )[0]
    margin = _rows(
        f"""
        SELECT coalesce(sum(l.margin), 0) FROM sales_receiptline l
        JOIN sales_receipt r ON r.id = l.receipt_id
        WHERE r.purchased_at >= %(start)s AND r.purchased_at < %(end)s
              {_store_filter("r.store_id", store_ids)}
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )[0][0]
    refunds, margin_back = _rows(
        f"""
        SELECT coalesce(sum(rl.amount), 0), coalesce(sum(rl.margin), 0)
        FROM sales_returnline rl JOIN sales_return d ON d.id = rl.return_doc_id
        WHERE d.returned_at >= %(start)s AND d.returned_at < %(end)s
              {_store_filter("d.store_id", store_ids)}
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )[0]
    new, retained, active_before = _rows(
        f"""
        WITH now_active AS (
            SELECT DISTINCT customer_id FROM sales_receipt
            WHERE customer_id IS NOT NULL AND purchased_at >= %(start)s AND purchased_at < %(end)s
                  {stores}
        ),
        before_active AS (
            SELECT DISTINCT customer_id FROM sales_receipt
            WHERE customer_id IS NOT NULL AND purchased_at >= %(before)s
                  AND purchased_at < %(start)s {stores}
        )
        SELECT
            (SELECT count(*) FROM now_active a WHERE NOT EXISTS (
                SELECT 1 FROM sales_receipt r WHERE r.customer_id = a.customer_id
                AND r.purchased_at < %(start)s {_store_filter("r.store_id", store_ids)})),
            (SELECT count(*) FROM before_active b JOIN now_active a USING (customer_id)),
            (SELECT count(*) FROM before_active)
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        p,
    )[0]
    revenue = gross - refunds
    return {
        "revenue": revenue,
        "margin": margin - margin_back,
        "receipts": receipts,
        "active_customers": active,
        "new_customers": new,
        "repeat_purchase_rate": _share(repeaters, active),
        "retention_rate": _share(retained, active_before),
        "average_receipt": (gross / receipts).quantize(Decimal("0.01")) if receipts else None,
        "sales_per_customer": (identified / active).quantize(Decimal("0.01")) if active else None,
    }


def _share(part, whole) -> float | None:
    return round(part / whole, 4) if whole else None


def dashboard_kpis(
    user, *, period: Period, store_id: int | None = None, currency: str | None = None
) -> dict:
    """KPIs of the period against the previous one of the same length, in the user's stores."""
    store_ids = dashboard_store_ids(user, store_id, currency)
    current = _period_kpis(period, store_ids)
    previous = _period_kpis(period.previous(), store_ids)
    out = {}
    for name in KPI_NAMES:
        now, before = current[name], previous[name]
        change = change_pp = None
        if name in RATE_KPIS:
            # A rate's change is a difference in percentage points, never a ratio of rates.
            if now is not None and before is not None:
                change_pp = round(100 * (float(now) - float(before)), 2)
        elif now is not None and before:
            change = round(float(now) / float(before) - 1, 4)
        out[name] = {"current": now, "previous": before, "change": change, "change_pp": change_pp}
    return out


def value_class_distribution(user) -> list[dict]:
    """Each value class's share of the visible customers and of their trailing revenue."""
    if not can_view_dashboard(user):
        raise Http404
    from django.db.models import Count, Sum

    rows = (
        CustomerMetrics.objects.filter(customer__in=visible_customers(user))
        .exclude(value_class="")
        .values("value_class")
        .annotate(customers=Count("pk"), revenue=Sum("revenue_window"))
    )
    found = {row["value_class"]: row for row in rows}
    total_customers = sum(row["customers"] for row in found.values())
    total_revenue = sum((row["revenue"] or ZERO for row in found.values()), ZERO)
    out = []
    for value, label in ValueClass.choices:
        row = found.get(value, {"customers": 0, "revenue": ZERO})
        out.append(
            {
                "value_class": value,
                "label": str(label),
                "customers": row["customers"],
                "revenue": row["revenue"] or ZERO,
                "customer_share": _share(row["customers"], total_customers),
                "revenue_share": _share(float(row["revenue"] or 0), float(total_revenue)),
            }
        )
    return out


def _visible_ids_sql(user) -> tuple[str, tuple]:
    sql, params = visible_customers(user).order_by().values("pk").query.sql_with_params()
    return sql, params


def pareto_curve(user, points: int = 50) -> list[dict]:
    """Cumulative share of trailing revenue against the share of customers, best first."""
    if not can_view_dashboard(user):
        raise Http404
    visible, params = _visible_ids_sql(user)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT bucket, max(customer_share), max(revenue_share) FROM (
                SELECT ntile({int(points)}) OVER w AS bucket,
                       row_number() OVER w::float / count(*) OVER () AS customer_share,
                       sum(revenue_window) OVER w / nullif(sum(revenue_window) OVER (), 0)
                           AS revenue_share
                FROM analytics_customermetrics
                WHERE revenue_window > 0 AND customer_id IN ({visible})
                WINDOW w AS (ORDER BY revenue_window DESC, customer_id)
            ) ranked GROUP BY bucket ORDER BY bucket
            """,  # noqa: S608 - only fixed SQL fragments are formatted in
            params,
        )
        return [
            {"customer_share": round(c, 4), "revenue_share": round(float(r or 0), 4)}
            for _b, c, r in cursor.fetchall()
        ]


def rfm_grid(user) -> list[dict]:
    """Customers and trailing revenue per recency x frequency cell, with the cell's segment."""
    if not can_view_dashboard(user):
        raise Http404
    from django.db.models import Count, Sum

    rows = (
        CustomerMetrics.objects.filter(customer__in=visible_customers(user))
        .exclude(recency_score=None)
        .values("recency_score", "frequency_score", "rfm_segment")
        .annotate(customers=Count("pk"), revenue=Sum("revenue_window"))
        .order_by("recency_score", "frequency_score")
    )
    return [
        {
            "r": row["recency_score"],
            "f": row["frequency_score"],
            "segment": row["rfm_segment"],
            "customers": row["customers"],
            "revenue": row["revenue"],
        }
        for row in rows
    ]


def cohort_retention(
    user, *, months: int = 12, store_id: int | None = None, currency: str | None = None
) -> list[dict]:
    """Monthly cohorts by first purchase: the share of each still buying N months later."""
    store_ids = dashboard_store_ids(user, store_id, currency)
    today = timezone.localdate()
    first_month = (today.replace(day=1) - dt.timedelta(days=31 * (months - 1))).replace(day=1)
    stores = _store_filter("store_id", store_ids)
    rows = _rows(
        f"""
        WITH monthly AS (
            SELECT DISTINCT customer_id,
                   date_trunc('month', purchased_at AT TIME ZONE %(tz)s)::date AS month
            FROM sales_receipt WHERE customer_id IS NOT NULL {stores}
        ),
        cohorts AS (SELECT customer_id, min(month) AS cohort FROM monthly GROUP BY 1)
        SELECT c.cohort,
               (extract(year FROM age(m.month, c.cohort)) * 12
                + extract(month FROM age(m.month, c.cohort)))::int AS offset_months,
               count(*)
        FROM cohorts c JOIN monthly m USING (customer_id)
        WHERE c.cohort >= %(first)s
        GROUP BY 1, 2 ORDER BY 1, 2
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        {"tz": str(timezone.get_current_timezone()), "first": first_month, "stores": store_ids},
    )
    cohorts: dict[dt.date, dict] = {}
    for cohort, offset, count in rows:
        entry = cohorts.setdefault(cohort, {"cohort": cohort.isoformat(), "size": 0, "shares": []})
        if offset == 0:
            entry["size"] = count
        entry.setdefault("counts", {})[offset] = count
    out = []
    for entry in cohorts.values():
        counts = entry.pop("counts")
        size = entry["size"] or 1
        span = max(counts) + 1
        entry["shares"] = [round(counts.get(i, 0) / size, 4) for i in range(span)]
        out.append(entry)
    return out


def monthly_sales(
    user, *, months: int = 24, store_id: int | None = None, currency: str | None = None
) -> list[dict]:
    """Net revenue per calendar month (returns by their own month), oldest first; the current
    month, still under way, is marked `partial`."""
    store_ids = dashboard_store_ids(user, store_id, currency)
    today = timezone.localdate()
    start_month = today.replace(day=1)
    for _month in range(months - 1):
        start_month = (start_month - dt.timedelta(days=1)).replace(day=1)
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(start_month, dt.time.min, tzinfo=zone)
    rows = _rows(
        f"""
        SELECT month, sum(amount) FROM (
            SELECT date_trunc('month', purchased_at AT TIME ZONE %(tz)s)::date AS month,
                   total AS amount
            FROM sales_receipt
            WHERE purchased_at >= %(start)s {_store_filter("store_id", store_ids)}
            UNION ALL
            SELECT date_trunc('month', d.returned_at AT TIME ZONE %(tz)s)::date, -rl.amount
            FROM sales_returnline rl JOIN sales_return d ON d.id = rl.return_doc_id
            WHERE d.returned_at >= %(start)s {_store_filter("d.store_id", store_ids)}
        ) moves GROUP BY 1 ORDER BY 1
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        {"tz": str(zone), "start": start, "stores": store_ids},
    )
    found = {month: amount for month, amount in rows}
    out, month = [], start_month
    while month <= today:
        partial = month == today.replace(day=1)
        out.append(
            {"month": month.isoformat(), "revenue": found.get(month, ZERO), "partial": partial}
        )
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return out


def sales_forecast(history: list[dict], *, horizon: int = 3, level: float = 0.8) -> list[dict]:
    """The next `horizon` months with an 80% interval: seasonal SARIMAX with two years of data,
    a local-level model with less, nothing with under six months.

    A month still under way (`partial`) is left out of the fit, which would read it as a slump,
    and is forecast in full beside its partial actual figure, before the `horizon` months.
    """
    partial = bool(history) and history[-1].get("partial", False)
    if partial:
        history = history[:-1]
        horizon += 1
    values = [float(row["revenue"]) for row in history]
    while values and values[0] == 0:
        values.pop(0)
    if len(values) < 6:
        return []
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    seasonal = (1, 1, 0, 12) if len(values) >= 24 else (0, 0, 0, 0)
    with warnings.catch_warnings():
        # Short retail series often trip statsmodels' convergence warnings; the interval shows it.
        warnings.simplefilter("ignore")
        model = SARIMAX(values, order=(0, 1, 1), seasonal_order=seasonal)
        fitted = model.fit(disp=False)
        forecast = fitted.get_forecast(horizon)
        mean = forecast.predicted_mean
        interval = forecast.conf_int(alpha=1 - level)
    last = dt.date.fromisoformat(history[-1]["month"])
    out = []
    for i in range(horizon):
        last = (last + dt.timedelta(days=32)).replace(day=1)
        out.append(
            {
                "month": last.isoformat(),
                "forecast": round(max(float(mean[i]), 0.0), 2),
                "low": round(max(float(interval[i][0]), 0.0), 2),
                "high": round(max(float(interval[i][1]), 0.0), 2),
            }
        )
    return out


def store_comparison(
    user, *, period: Period, store_id: int | None = None, currency: str | None = None
) -> list[dict]:
    """Revenue, receipts, customers and average receipt per store in the period."""
    store_ids = dashboard_store_ids(user, store_id, currency)
    start, end = period.bounds()
    rows = _rows(
        f"""
        SELECT s.id, s.name, count(r.id), coalesce(sum(r.total), 0), count(DISTINCT r.customer_id)
        FROM sales_store s
        LEFT JOIN sales_receipt r
               ON r.store_id = s.id AND r.purchased_at >= %(start)s AND r.purchased_at < %(end)s
        WHERE TRUE {_store_filter("s.id", store_ids)}
        GROUP BY s.id, s.name ORDER BY 4 DESC, s.name
        """,  # noqa: S608 - only fixed SQL fragments are formatted in
        {"start": start, "end": end, "stores": store_ids},
    )
    return [
        {
            "store_id": sid,
            "store": name,
            "receipts": receipts,
            "revenue": revenue,
            "customers": customers,
            "average_receipt": (revenue / receipts).quantize(Decimal("0.01")) if receipts else None,
        }
        for sid, name, receipts, revenue, customers in rows
    ]


def model_summary() -> dict | None:
    """The latest CLV fit for BI tools: parameters (α in days and weeks), log-likelihoods,
    customers used, the sample, the sanity gate's verdict and reasons, and the backtest."""
    fit = latest_fit()
    if fit is None:
        return None
    return {
        "fitted_at": fit.fitted_at,
        "published": fit.published,
        "not_published_because": fit.translated_gate_notes(),
        "notes": fit.translated_notes(),
        "customers": fit.customers,
        "repeat_customers": fit.repeat_customers,
        "sample_size": fit.sampled or fit.customers,
        "bgnbd": {"r": fit.r, "alpha_days": fit.alpha, "alpha_weeks": fit.alpha_weeks,
                  "a": fit.a, "b": fit.b, "log_likelihood": fit.bgnbd_log_likelihood},
        "gamma_gamma": {"p": fit.p, "q": fit.q, "gamma": fit.gamma,
                        "log_likelihood": fit.gamma_gamma_log_likelihood},
        "backtest": fit.backtest,
    }  # fmt: skip


def latest_fit() -> ClvModelFit | None:
    return ClvModelFit.objects.first()


def latest_run() -> RecomputeRun | None:
    return RecomputeRun.objects.first()
