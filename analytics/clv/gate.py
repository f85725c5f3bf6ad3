"""The checks a CLV fit must pass before its figures reach a card: backtest and sanity gate.

Backtest (calibration/holdout, as in Fader, Hardie & Lee's own validation): BG/NBD is fitted
again on the chain's history as it stood `weeks` weeks ago (the purchase days up to the
calibration end, `purchase_days.PurchaseDays.backtest_arrays`), each of those customers'
purchase days in the following `weeks` weeks is predicted, and the prediction is compared with
what happened: in total (the error in percent) and by the number of repeat purchase days in
calibration (Fader's chart: 0, 1, ... 6 and 7+).

Sanity gate: a fit is published as individual CLV only when
- both models were fitted (enough customers, repeat buyers and history);
- there are at least `min_repeat_buyers` repeat buyers;
- no parameter is degenerate: a below A_MIN (a dropout chance indistinguishable from zero: the
  optimiser is on the ridge where a and b grow together), b above B_MAX, q above Q_MAX (every
  customer's mean spend the same, to the model) or at most 1 (an unbounded mean), γ above
  GAMMA_MAX_RATIO times the mean repeat spend, r or α at the optimiser's bounds;
- the backtest ran and its total error is within `max_error`.
Otherwise the dashboard and the card say why, and the metrics carry the fallback: the
customer's trailing margin rate over the horizon, discounted like the model's CLV
(`fallback_clv`); value class A (potential VIP), P(alive) and expected purchases are then left
empty rather than driven by a model that failed.

The thresholds that are a matter of taste (weeks, error, repeat buyers) are in
`AnalyticsSettings`; those that describe a broken optimisation are constants here.
"""

from __future__ import annotations

import numpy as np
from django.utils.translation import gettext_noop

from .bgnbd import conditional_expected_purchases, fit_bgnbd
from .params import BGNBD_LOG_BOUND, DAYS_PER_MONTH, BgNbdParams, FitResult, Note

A_MIN = 1e-3
B_MAX = 1e3
Q_MAX = 1e3
GAMMA_MAX_RATIO = 1e3
GROUPS = 8  # repeat days in calibration: 0 .. 6 and "7+"


def run_backtest(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    holdout: np.ndarray,
    *,
    weeks: int,
    start: BgNbdParams | None = None,
) -> dict:
    """Fit on the calibration arrays, predict the next `weeks` weeks, compare with `holdout`.

    Returns a JSON-ready dict; `error` is None when the backtest could not run (`note` says
    why, as a Note's JSON).
    """
    out: dict = {"weeks": weeks, "customers": len(x), "error": None, "groups": []}
    params, log_likelihood, message = fit_bgnbd(x, t_x, T, start_bg=start)
    if params is None:
        out["note"] = message.as_json() if isinstance(message, Note) else None
        return out
    predicted = conditional_expected_purchases(params, weeks * 7.0, x, t_x, T)
    actual_total = float(holdout.sum())
    predicted_total = float(predicted.sum())
    out.update(
        params={"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b},
        log_likelihood=log_likelihood,
        actual_total=actual_total,
        predicted_total=predicted_total,
        error=(predicted_total / actual_total - 1) if actual_total > 0 else None,
    )
    if actual_total <= 0:
        out["note"] = Note(gettext_noop("Nobody bought in the holdout weeks.")).as_json()
    group = np.minimum(x, GROUPS - 1).astype(int)
    counts = np.bincount(group, minlength=GROUPS)
    actual = np.bincount(group, weights=holdout, minlength=GROUPS)
    expected = np.bincount(group, weights=predicted, minlength=GROUPS)
    for index in range(GROUPS):
        if counts[index]:
            out["groups"].append(
                {
                    "x": index,
                    "label": f"{index}+" if index == GROUPS - 1 else str(index),
                    "customers": int(counts[index]),
                    "actual": float(actual[index] / counts[index]),
                    "predicted": float(expected[index] / counts[index]),
                }
            )
    return out


def gate(
    fit: FitResult,
    backtest: dict | None,
    *,
    mean_spend: float,
    min_repeat_buyers: int,
    max_error: float,
) -> list[Note]:
    """Why this fit must not be published as individual CLV; empty when it may."""
    reasons: list[Note] = []
    bg, gg = fit.bgnbd, fit.gamma_gamma
    if bg is None or gg is None:
        reasons.append(Note(gettext_noop("The models could not be fitted on this history.")))
    if fit.repeat_customers < min_repeat_buyers:
        reasons.append(
            Note(
                gettext_noop("Only %(n)d repeat buyers; at least %(min)d are needed."),
                n=fit.repeat_customers,
                min=min_repeat_buyers,
            )
        )
    if bg is not None:
        edge = np.exp(BGNBD_LOG_BOUND - 0.5)
        if bg.a < A_MIN or bg.b > B_MAX:
            reasons.append(
                Note(
                    gettext_noop(
                        "BG/NBD is degenerate (a=%(a).3g, b=%(b).3g): it cannot tell who "
                        "has stopped buying."
                    ),
                    a=bg.a,
                    b=bg.b,
                )
            )
        elif any(v > edge or v < 1 / edge for v in (bg.r, bg.alpha)):
            reasons.append(
                Note(gettext_noop("BG/NBD parameters at the edge of their range: not trusted."))
            )
    if gg is not None:
        too_big = mean_spend > 0 and gg.gamma > GAMMA_MAX_RATIO * mean_spend
        if gg.q > Q_MAX or gg.q <= 1 or too_big:
            reasons.append(
                Note(
                    gettext_noop(
                        "Gamma-Gamma is degenerate (q=%(q).3g, γ=%(gamma).3g): it cannot tell "
                        "big spenders from small ones."
                    ),
                    q=gg.q,
                    gamma=gg.gamma,
                )
            )
    if backtest is None or backtest.get("error") is None:
        reasons.append(
            Note(gettext_noop("The backtest could not run: the history is too short for it."))
        )
    elif abs(backtest["error"]) > max_error:
        reasons.append(
            Note(
                gettext_noop(
                    "The backtest missed the holdout weeks by %(error).1f%% "
                    "(at most %(max).0f%% is accepted)."
                ),
                error=100 * backtest["error"],
                max=100 * max_error,
            )
        )
    return reasons


def discount_sum(months: int, annual_discount_rate: float) -> float:
    """Σ 1/(1+i)^k over the horizon's months, i the monthly rate of the annual one."""
    monthly = (1 + annual_discount_rate) ** (1 / 12) - 1
    return float(sum(1 / (1 + monthly) ** k for k in range(1, months + 1)))


def fallback_clv(
    margin_window: np.ndarray, *, window_days: int, months: int, annual_discount_rate: float
) -> np.ndarray:
    """The trailing margin rate carried over the horizon: the window's margin per month, for
    each month of the horizon, discounted monthly (roubles; kopecks in, roubles out)."""
    per_month = margin_window / 100.0 * DAYS_PER_MONTH / window_days
    return per_month * discount_sum(months, annual_discount_rate)


def margin_share(revenue: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """The customer's own margin per rouble of revenue, within [0, 1] (0 without revenue)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(revenue > 0, margin / np.where(revenue > 0, revenue, 1), 0.0)
    return np.clip(share, 0.0, 1.0)
