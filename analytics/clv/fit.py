"""Both models together: one fit on the same sample, and the CLV they predict."""

from __future__ import annotations

import time

import numpy as np

from .bgnbd import BgNbdPredictor, _bgnbd_problem, _fit_bgnbd
from .gamma_gamma import _fit_gamma_gamma, _gamma_gamma_problem
from .optimiser import _sample, _sample_spoils
from .params import MAX_FIT_CUSTOMERS, BgNbdParams, FitResult, GammaGammaParams


def predicted_clv(
    bg: BgNbdParams,
    spend: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    *,
    months: int,
    annual_discount_rate: float,
) -> np.ndarray:
    """Spend times the purchases expected in each coming month, discounted monthly."""
    predictor = BgNbdPredictor(bg, x, t_x, T)
    return predictor.clv(spend, months=months, annual_discount_rate=annual_discount_rate)


def fit(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    m: np.ndarray,
    *,
    start_bg: BgNbdParams | None = None,
    start_gg: GammaGammaParams | None = None,
    max_customers: int | None = MAX_FIT_CUSTOMERS,
) -> FitResult:
    """Fit both models on the calibration arrays and say, in words, what could not be fitted.

    `start_bg`/`start_gg` are the previous fit's parameters to start from (None: cold start).
    Above `max_customers` customers both models are fitted on the same fixed-seed sample of them,
    and `sampled` says how many; the log-likelihoods are over all the customers.
    """
    started = time.perf_counter()
    x, t_x, T, m = (np.asarray(v, dtype=float) for v in (x, t_x, T, m))
    out = FitResult(customers=len(x), repeat_customers=int((x > 0).sum()))
    sample = _sample(len(x), max_customers)
    if sample is not None and (
        _sample_spoils(sample, _bgnbd_problem, x, t_x, T)
        or _sample_spoils(sample, _gamma_gamma_problem, x, m)
    ):
        sample = None
    out.sampled = 0 if sample is None else len(sample)
    bg, bg_ll, bg_message, out.bgnbd_start = _fit_bgnbd(x, t_x, T, sample, start_bg)
    out.bgnbd, out.bgnbd_log_likelihood = bg, bg_ll
    if bg_message:
        out.messages.append(bg_message)
    gg, gg_ll, gg_message, out.gamma_gamma_start = _fit_gamma_gamma(x, m, sample, start_gg)
    out.gamma_gamma, out.gamma_gamma_log_likelihood = gg, gg_ll
    if gg_message:
        out.messages.append(gg_message)
    out.seconds = time.perf_counter() - started
    return out
