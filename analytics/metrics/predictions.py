"""Stage 2: the buyers' columns, the CLV models and their predictions.

Reads the `BaseTables` of `base.build_base` (am_rc, purchase days); `fit_models` works on
numpy arrays only; `write_predictions` creates `am_clv` and returns it as a `PredictionTable`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.utils import timezone

from crm.pg import binary as pgbinary

from .. import clv, purchase_days, ranking
from ..clv import gate as backtest
from ..models import AnalyticsSettings, ClvModelFit
from .base import NET_SQL
from .session import STORED_DAYS, BaseTables, Params, PredictionTable, _execute, _noop

BUYER_COLUMNS = [
    ("ids", "int8"),
    ("receipts", "int8"),
    ("revenue", "int8"),
    ("revenue_window", "int8"),
    ("first_at", "int8"),
    ("last_at", "int8"),
    ("has_days", "int8"),
]
DAY_US = 86_400_000_000


def fetch_stored_days(params: Params, using) -> dict[str, np.ndarray]:
    """Every row of `PurchaseDays` as `fetch_buyers_and_days` counts it (its day columns, and
    the customer in `ids`), through the Django connection `using`: the nightly run's second
    session reads them while this one aggregates the receipts (`run.recompute_all`)."""
    days_of = purchase_days.day_columns("p.days", "p.first_value")
    return pgbinary.copy_out(
        f"SELECT p.customer_id, {days_of} FROM {STORED_DAYS} p",  # noqa: S608 - only fixed SQL fragments are formatted in
        {"cal_end": params.cal_end},
        [("ids", "int8"), *purchase_days.DAY_COLUMNS],
        using=using,
    )


def fetch_buyers_and_days(
    params: Params, base: BaseTables, stored_days: dict[str, np.ndarray] | None = None
) -> tuple[ranking.Buyers, purchase_days.PurchaseDays, bool]:
    """Every buyer in `am_rc` with their money (kopecks) and times (microseconds) for the cut
    points, and their purchase days (`base.purchase_days`) for the models, in ONE binary COPY;
    the last item says whether every buyer had purchase days (those without are left out of
    the days, and `recompute_all` then rebuilds them).

    Times travel as microseconds since the epoch: `date_part` is a double, exact to well under
    half a microsecond at today's epoch values, so rounding recovers the stored integer (the
    numeric `extract` costs several times more per row).

    `stored_days` (`fetch_stored_days`, read already): the purchase days are matched to the
    buyers here, by id, and the COPY reads `am_rc` alone.
    """
    money = f"""rc.customer_id, rc.receipts::int8, {NET_SQL["revenue"]}, {NET_SQL["revenue_w"]},
               round(date_part('epoch', rc.first_at) * 1000000)::int8,
               round(date_part('epoch', rc.last_at) * 1000000)::int8"""
    margins = f"{NET_SQL['margin']}, {NET_SQL['margin_w']}"
    if stored_days is None:
        days_of = purchase_days.day_columns("coalesce(p.days, '{0}')", "coalesce(p.first_value, 0)")
        columns = pgbinary.copy_out(
            f"""
            SELECT {money}, (p.customer_id IS NOT NULL)::int::int8, {days_of}, {margins}
            FROM am_rc rc LEFT JOIN {base.purchase_days} p ON p.customer_id = rc.customer_id
            """,  # noqa: S608 - only fixed SQL fragments are formatted in
            {"cal_end": params.cal_end},
            BUYER_COLUMNS + purchase_days.DAY_COLUMNS + purchase_days.MONEY_COLUMNS,
        )
    else:
        columns = pgbinary.copy_out(
            f"SELECT {money}, {margins} FROM am_rc rc",  # noqa: S608 - only fixed SQL fragments are formatted in
            None,
            BUYER_COLUMNS[:-1] + purchase_days.MONEY_COLUMNS,
        )
        columns.update(_match_days(columns["ids"], stored_days))
    order = np.argsort(columns["ids"], kind="stable")  # a fixed order for the fit's sample
    columns = {name: values[order] for name, values in columns.items()}
    now_us = (params.as_of - ranking.EPOCH) // dt.timedelta(microseconds=1)
    first = columns["first_at"]
    has_days = columns["has_days"].astype(bool)
    buyers = ranking.Buyers(
        ids=columns["ids"],
        receipts=columns["receipts"],
        revenue=columns["revenue"],
        revenue_window=columns["revenue_window"],
        last_at=columns["last_at"],
        t_x=((columns["last_at"] - first) // DAY_US).astype(float),
        age=((now_us - first) // DAY_US).astype(float),
    )
    days = purchase_days.PurchaseDays(
        ids=columns["ids"][has_days],
        revenue=columns["revenue"][has_days],
        **{
            name: columns[name][has_days]
            for name, _kind in purchase_days.DAY_COLUMNS + purchase_days.MONEY_COLUMNS
        },
        as_of_day=params.as_of_day,
        cal_end=params.cal_end,
    )
    return buyers, days, bool(has_days.all())


def _match_days(ids: np.ndarray, stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`has_days` and the day columns of `stored` for each of `ids`, as the COPY's left join
    gives them (a buyer without a row has no days; its other values are never read)."""
    order = np.argsort(stored["ids"], kind="stable")
    stored_ids = stored["ids"][order]
    at = np.minimum(np.searchsorted(stored_ids, ids), max(len(stored_ids) - 1, 0))
    found = stored_ids[at] == ids if len(stored_ids) else np.zeros(len(ids), dtype=bool)
    matched = {"has_days": found.astype(np.int64)}
    for name, _kind in purchase_days.DAY_COLUMNS:
        values = stored[name][order][at] if len(stored_ids) else np.zeros(len(ids), np.int64)
        matched[name] = np.where(found, values, 0)
    return matched


def fetch_days(params: Params, base: BaseTables) -> purchase_days.PurchaseDays:
    """Every buyer's purchase days with their net money, for the models."""
    return fetch_buyers_and_days(params, base)[1]


def fit_models(
    days: purchase_days.PurchaseDays,
    previous: ClvModelFit | None = None,
    settings: AnalyticsSettings | None = None,
    progress: Callable = _noop,
) -> ClvModelFit:
    """Fit BG/NBD and Gamma-Gamma on the buyers' purchase days, backtest BG/NBD on the
    history as it stood `clv_backtest_weeks` ago, and keep the fit with the verdict of the
    sanity gate (analytics.clv.gate), degenerate or not (`check_models`, then `record_fit`).
    """
    conf = settings or AnalyticsSettings.load()
    return record_fit(check_models(days, previous, conf, progress))


@dataclass
class CheckedFit:
    """A fit with its backtest and the sanity gate's reasons against it, not yet stored."""

    result: clv.FitResult
    backtest: dict
    reasons: list


def check_models(
    days: purchase_days.PurchaseDays,
    previous: ClvModelFit | None,
    conf: AnalyticsSettings,
    progress: Callable = _noop,
) -> CheckedFit:
    """The fit, its backtest and the gate's verdict, from numpy arrays alone: no database
    access, so it can run while the session's server works on something else.

    The previous fit, when usable, is the optimiser's starting point: from one night to the
    next the parameters barely move (clv.fit falls back to a cold start when that is worse).
    """
    _ids, x, t_x, T, m = days.model_arrays()
    start_bg = start_gg = None
    if previous is not None and previous.usable_bgnbd:
        start_bg = clv.BgNbdParams(previous.r, previous.alpha, previous.a, previous.b)
    if previous is not None and previous.usable_gamma_gamma:
        start_gg = clv.GammaGammaParams(previous.p, previous.q, previous.gamma)
    result = clv.fit(x, t_x, T, m, start_bg=start_bg, start_gg=start_gg)
    progress("backtest", 70)
    started = time.perf_counter()
    bx, bt_x, bT, holdout = days.backtest_arrays()
    checked = backtest.run_backtest(
        bx, bt_x, bT, holdout, weeks=conf.clv_backtest_weeks, start=result.bgnbd
    )
    checked["calibration_end"] = (
        purchase_days.EPOCH_DATE + dt.timedelta(days=days.cal_end)
    ).isoformat()
    checked["seconds"] = time.perf_counter() - started
    repeat = (x > 0) & (m > 0)
    reasons = backtest.gate(
        result,
        checked,
        mean_spend=float(m[repeat].mean()) if repeat.any() else 0.0,
        min_repeat_buyers=conf.clv_min_repeat_buyers,
        max_error=float(conf.clv_max_backtest_error),
    )
    return CheckedFit(result=result, backtest=checked, reasons=reasons)


def record_fit(checked: CheckedFit) -> ClvModelFit:
    """Store a checked fit; published only when the gate found nothing against it."""
    result, reasons = checked.result, checked.reasons
    bg, gg = result.bgnbd, result.gamma_gamma
    return ClvModelFit.objects.create(
        published=not reasons,
        gate_notes=[reason.as_json() for reason in reasons],
        backtest=checked.backtest,
        fitted_at=timezone.now(),
        customers=result.customers,
        repeat_customers=result.repeat_customers,
        sampled=result.sampled,
        r=bg.r if bg else None,
        alpha=bg.alpha if bg else None,
        a=bg.a if bg else None,
        b=bg.b if bg else None,
        bgnbd_log_likelihood=result.bgnbd_log_likelihood,
        p=gg.p if gg else None,
        q=gg.q if gg else None,
        gamma=gg.gamma if gg else None,
        gamma_gamma_log_likelihood=result.gamma_gamma_log_likelihood,
        seconds=result.seconds,
        message=result.message,
        notes=result.notes,
    )


def write_predictions(
    params: Params,
    base: BaseTables,
    fit: ClvModelFit | None,
    days: purchase_days.PurchaseDays | None = None,
    scores: dict[str, np.ndarray] | None = None,
    buyers: ranking.Buyers | None = None,
) -> PredictionTable:
    """COPY the buyers' P(alive), 90-day purchases and CLV into `am_clv`, and in the full run
    their RFM scores (`ranking.rfm_ranks`) and money (`buyers`), one row per buyer.

    Columns a run leaves out are NULL: the predictions when the model is unusable, the
    scores in a refresh, which compares the customer's keys with the stored cut points (the
    numpy scores equal that comparison, and a test holds the two equal, without a dozen row
    comparisons per customer in the final statement). The money figures are rounded to whole
    kopecks here (PostgreSQL turns a double into numeric by printing and parsing it) and
    travel as binary numerics with two decimals (`crm.pg.binary`, kind "kopecks"), built in
    numpy: the same values `kopecks * 0.01` gives in SQL, where building them for every
    customer was the largest cost of the final INSERT (bench/README.md, session 5). The full
    run also sends the buyers' net money and average receipt that way (`_money_columns`);
    the final write computes them in SQL only for whom they are missing (a refresh, or
    customers without receipts).

    Predicted CLV is discounted *margin*, so that it compares with the historical LCV: the
    expected revenue times the customer's own margin share. A fit that failed its sanity gate
    (or no fit) gives the fallback instead (`backtest.fallback_clv`, basis 2), and no P(alive),
    expected purchases or 12-month value, so nothing downstream (class A, class D by P(alive))
    is driven by a model that failed.
    """
    _execute(
        "CREATE TEMP TABLE am_clv (customer_id bigint, p_alive float8, exp90 float8, "
        "clv numeric(14, 2), v12 int8, v12_money numeric(14, 2), basis int8, "
        "r int8, f int8, m int8, revenue numeric(14, 2), revenue_w numeric(14, 2), "
        "margin numeric(14, 2), margin_w numeric(14, 2), average numeric(14, 2))"
    )
    days = days if days is not None else fetch_days(params, base)
    if len(days.ids) == 0:
        return PredictionTable()
    ids, x, t_x, T, m = days.model_arrays()
    conf = params.settings
    columns, values = [("customer_id", "int8")], [ids]
    publish = fit is not None and fit.published and fit.usable_bgnbd and fit.usable_gamma_gamma
    if publish:
        bg = clv.BgNbdParams(fit.r, fit.alpha, fit.a, fit.b)
        gg = clv.GammaGammaParams(fit.p, fit.q, fit.gamma)
        # Without repeat days a customer has no repeat spend of their own: the population's.
        spend = clv.conditional_expected_spend(gg, x, m)
        predictor = clv.BgNbdPredictor(bg, x, t_x, T)
        revenue = predictor.clv(
            spend,
            months=conf.clv_horizon_months,
            annual_discount_rate=float(conf.annual_discount_rate),
        )
        value = revenue * backtest.margin_share(days.revenue, days.margin)
        v12 = spend * predictor.expected_purchases(365.0)
        columns += [
            ("p_alive", "float8"),
            ("exp90", "float8"),
            ("clv", "kopecks"),
            ("v12", "int8"),
            ("v12_money", "kopecks"),
            ("basis", "int8"),
        ]
        v12_kopecks = _kopecks(v12)
        values += [
            predictor.p_alive,
            predictor.expected_purchases(90),
            _kopecks(value),
            v12_kopecks,
            v12_kopecks,
            np.ones(len(ids), dtype=np.int64),
        ]
    else:
        value = backtest.fallback_clv(
            days.margin_window,
            window_days=conf.window_days,
            months=conf.clv_horizon_months,
            annual_discount_rate=float(conf.annual_discount_rate),
        )
        columns += [("clv", "kopecks"), ("basis", "int8")]
        values += [_kopecks(value), np.full(len(ids), 2, dtype=np.int64)]
    if scores is not None:
        # The scores follow the buyers of `am_rc`, the days those with purchase days: the same
        # customers, both in id order.
        columns += [(kind, "int8") for kind in ranking.RFM_KEYS]
        values += [scores[kind] for kind in ranking.RFM_KEYS]
    if buyers is not None:
        money = _money_columns(buyers, days)
        columns += [(name, "kopecks") for name in money]
        values += list(money.values())
    pgbinary.copy_in("am_clv", columns, values)
    return PredictionTable()


# Beyond this, doubling an amount (the average receipt's rounding) could overflow int64, where
# SQL would raise instead: such a run leaves the money to the final write's SQL.
_MONEY_ROOM = 2**61


def _money_columns(
    buyers: ranking.Buyers, days: purchase_days.PurchaseDays
) -> dict[str, np.ndarray]:
    """The buyers' net revenue and margin (all time and in the window) and average receipt in
    kopecks, as the final write would compute them from `am_rc` (the same NET_SQL figures,
    fetched by `fetch_buyers_and_days`); empty when the buyers and the days do not line up."""
    if not np.array_equal(buyers.ids, days.ids):
        return {}
    revenue, receipts = buyers.revenue, buyers.receipts
    if len(revenue) and (np.abs(revenue).max() >= _MONEY_ROOM or receipts.max() >= _MONEY_ROOM):
        return {}
    # Rounded half away from zero as the write's integer SQL does: add half a receipt count of
    # the revenue's sign, then divide truncating toward zero.
    twice = 2 * revenue + np.where(revenue < 0, -receipts, receipts)
    average = np.abs(twice) // (2 * receipts)
    return {
        "revenue": revenue,
        "revenue_w": buyers.revenue_window,
        "margin": days.margin,
        "margin_w": days.margin_window,
        "average": np.where(twice < 0, -average, average),
    }


def _kopecks(roubles: np.ndarray) -> np.ndarray:
    """Amounts rounded half up to whole kopecks; a prediction that is not a number is a bug in
    the model code, and writing it would poison every sum the dashboard makes."""
    if not np.all(np.isfinite(roubles)):
        raise ValueError("CLV predictions must be finite numbers")
    return np.floor(np.asarray(roubles) * 100 + 0.5).astype(np.int64)
