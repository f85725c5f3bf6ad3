"""Gamma-Gamma: the spend-per-purchase model (likelihood, fit, expected spend, simulation)."""

from __future__ import annotations

import numpy as np
from django.utils.translation import gettext_noop
from scipy.special import digamma, gammaln

from .optimiser import (
    _log_space_objective,
    _log_start,
    _optimise,
    _sample,
    _sample_spoils,
    _wsum,
)
from .params import (
    GAMMA_GAMMA_LOG_BOUND,
    MAX_FIT_CUSTOMERS,
    MIN_REPEAT_CUSTOMERS,
    PILOT_CUSTOMERS,
    GammaGammaParams,
    Note,
    Objective,
)


def gamma_gamma_log_likelihood(
    params: GammaGammaParams | np.ndarray, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood of the average spend `m` over `x` purchases (Gamma-Gamma)."""
    if isinstance(params, GammaGammaParams):
        p, q, gamma = params.p, params.q, params.gamma
    else:
        p, q, gamma = params
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )


class _GammaGammaData:
    """(x, m) rows arranged so that one evaluation of the summed log-likelihood calls `gammaln`
    and `digamma` once per distinct x and otherwise needs one log per customer: the terms in
    log m and log x do not depend on the parameters and are summed once."""

    def __init__(self, x: np.ndarray, m: np.ndarray):
        self.n = len(x)
        self.xs, groups = np.unique(x, return_inverse=True)
        self.x_counts = np.bincount(groups, minlength=len(self.xs)).astype(float)
        self.x = x
        self.mx = m * x
        log_m = np.log(m)
        self.sum_log_m = float(log_m.sum())
        self.sum_x_log_mx = _wsum(x, log_m + np.log(x))

    def log_likelihood(self, params, *, gradient: bool = False) -> tuple[float, np.ndarray | None]:
        p, q, gamma = params
        pxs = p * self.xs
        counts, n = self.x_counts, self.n
        log_total = np.log(gamma + self.mx)
        x_log_total = _wsum(self.x, log_total)
        sum_log_total = log_total.sum()
        log_gamma = float(np.log(gamma))
        ll = (
            counts @ (gammaln(pxs + q) - gammaln(pxs))
            + n * (q * log_gamma - gammaln(q))
            + p * self.sum_x_log_mx
            - self.sum_log_m
            - p * x_log_total
            - q * sum_log_total
        )
        if not gradient:
            return float(ll), None
        both = digamma(pxs + q)
        inverse_total = 1 / (gamma + self.mx)
        d_p = (counts * self.xs) @ (both - digamma(pxs)) + self.sum_x_log_mx - x_log_total
        d_q = counts @ both + n * (log_gamma - digamma(q)) - sum_log_total
        d_gamma = n * q / gamma - p * _wsum(self.x, inverse_total) - q * inverse_total.sum()
        return float(ll), np.array([d_p, d_q, d_gamma])


def _spenders(x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The repeat buyers with a positive spend: the customers Gamma-Gamma learns from."""
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    return x[keep], m[keep]


def _gamma_gamma_problem(x: np.ndarray, m: np.ndarray) -> str:
    x, m = _spenders(x, m)
    if len(x) < MIN_REPEAT_CUSTOMERS:
        return Note(
            gettext_noop("Only %(n)d repeat buyers with a positive spend: Gamma-Gamma not fitted."),
            n=len(x),
        )
    if np.allclose(m, m[0]):
        return Note(
            gettext_noop("Every repeat buyer spends the same: Gamma-Gamma has nothing to learn.")
        )
    return ""


def _gamma_gamma_objective(data: _GammaGammaData) -> Objective:
    """Minus the mean log-likelihood and its gradient, in log-parameters (p, q, γ)."""
    return _log_space_objective(data, 3)


def _fit_gamma_gamma(
    x: np.ndarray,
    m: np.ndarray,
    sample: np.ndarray | None,
    start_gg: GammaGammaParams | None,
) -> tuple[GammaGammaParams | None, float | None, str, str]:
    problem = _gamma_gamma_problem(x, m)
    if problem:
        return None, None, problem, ""
    all_x, all_m = _spenders(x, m)
    fx, fm = (all_x, all_m) if sample is None else _spenders(x[sample], m[sample])
    n = len(fx)
    scale = float(np.mean(fm))  # fitted in units of the mean spend, then γ is scaled back
    objective = _gamma_gamma_objective(_GammaGammaData(fx, fm / scale))

    def pilot() -> Objective:
        rows = _sample(n, PILOT_CUSTOMERS)
        if rows is None:
            return objective
        return _gamma_gamma_objective(_GammaGammaData(fx[rows], fm[rows] / scale))

    cold = np.log([2.0, 3.0, 2.0])
    warm = None
    if start_gg is not None:
        warm = _log_start((start_gg.p, start_gg.q, start_gg.gamma / scale))
    result, how = _optimise(objective, cold, warm, GAMMA_GAMMA_LOG_BOUND, pilot)
    p, q, gamma_scaled = np.exp(result.x)
    gamma = gamma_scaled * scale
    if sample is None:
        log_likelihood = -float(result.fun) * n
    else:
        with np.errstate(all="ignore"):
            log_likelihood, _ = _GammaGammaData(all_x, all_m / scale).log_likelihood(
                (p, q, gamma_scaled)
            )
    # The log-likelihood in the original units differs by the Jacobian of the rescaling.
    log_likelihood -= len(all_x) * float(np.log(scale))
    message = ""
    if q <= 1:
        message = Note(
            gettext_noop("Gamma-Gamma q <= 1: the mean spend is unbounded; own averages are used.")
        )
        return None, log_likelihood, message, how
    if not result.success:
        message = Note(
            gettext_noop("Gamma-Gamma fit did not converge (%(reason)s)."),
            reason=str(result.message),
        )
    return GammaGammaParams(float(p), float(q), float(gamma)), log_likelihood, message, how


def fit_gamma_gamma(
    x: np.ndarray,
    m: np.ndarray,
    *,
    start_gg: GammaGammaParams | None = None,
    max_customers: int | None = MAX_FIT_CUSTOMERS,
) -> tuple[GammaGammaParams | None, float | None, str]:
    """Maximum-likelihood Gamma-Gamma parameters over customers with x > 0 and m > 0.

    Above `max_customers` customers given, the repeat buyers among the same fixed-seed sample as
    `fit_bgnbd` draws are fitted; the log-likelihood is always over all the repeat buyers.
    """
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    sample = _sample(len(x), max_customers)
    if sample is not None and _sample_spoils(sample, _gamma_gamma_problem, x, m):
        sample = None
    params, log_likelihood, message, _how = _fit_gamma_gamma(x, m, sample, start_gg)
    return params, log_likelihood, message


def conditional_expected_spend(
    params: GammaGammaParams | None, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """E[spend per purchase | x, m]: the customer's average shrunk towards the population's."""
    x = np.asarray(x, dtype=float)
    m = np.nan_to_num(np.asarray(m, dtype=float), nan=0.0)
    m = np.clip(m, 0.0, None)
    if params is None:
        return m
    p, q, gamma = params.p, params.q, params.gamma
    return (gamma + m * x) * p / (p * x + q - 1)


def simulate_gamma_gamma(
    params: GammaGammaParams, x: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The average of `x` purchase values per customer under Gamma-Gamma (0 where x is 0)."""
    x = np.asarray(x)
    nu = rng.gamma(params.q, 1 / params.gamma, len(x))
    totals = rng.gamma(np.maximum(params.p * x, 1e-12), 1 / nu)
    return np.where(x > 0, totals / np.maximum(x, 1), 0.0)
