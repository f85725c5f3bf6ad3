"""BG/NBD and Gamma-Gamma models of customer lifetime value (Fader, Hardie & Lee, 2005).

Pure numpy/scipy over arrays, one element per customer:
`x` repeat purchases (receipts after the first), `t_x` days from the first to the last purchase,
`T` days from the first purchase to the end of the calibration period, `m` the average net
receipt. Likelihoods are summed in log space (`gammaln`, `betaln`, log-sum-exp) and fitted by
`scipy.optimize.minimize` on the logarithms of the parameters, so they stay positive and a
parameter of 0.1 and one of 500 are equally easy for the optimiser.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

# Below these the likelihood surface is too flat to mean anything; we say so instead of fitting.
MIN_CUSTOMERS = 10
MIN_REPEAT_CUSTOMERS = 5
MIN_HISTORY_DAYS = 28
DAYS_PER_MONTH = 365.25 / 12


@dataclass
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass
class GammaGammaParams:
    p: float
    q: float
    gamma: float


@dataclass
class FitResult:
    customers: int = 0
    repeat_customers: int = 0
    bgnbd: BgNbdParams | None = None
    bgnbd_log_likelihood: float | None = None
    gamma_gamma: GammaGammaParams | None = None
    gamma_gamma_log_likelihood: float | None = None
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return " ".join(self.messages)


def _compress(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows and their counts: many customers share (x, t_x, T) once times are in days."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return unique, counts.astype(float)


def bgnbd_log_likelihood(
    params: BgNbdParams | np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood of BG/NBD (FHL 2005, eq. 6), stable for large x."""
    r, alpha, a, b = _bg_tuple(params)
    x = np.asarray(x, dtype=float)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return common + np.logaddexp(alive, dropped)


def _bgnbd_ll_and_gradient(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log-likelihood per customer and its gradient (4 x n) in (r, α, a, b)."""
    r, alpha, a, b = params
    ll = bgnbd_log_likelihood(params, x, t_x, T)
    alive = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    total = np.logaddexp(alive, dropped)
    w_alive = np.exp(alive - total)
    w_dropped = np.exp(dropped - total)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_r = (
            digamma(r + x)
            - digamma(r)
            + np.log(alpha)
            - w_alive * np.log(alpha + T)
            - w_dropped * np.log(alpha + t_x)
        )
        d_alpha = r / alpha - w_alive * (r + x) / (alpha + T) - w_dropped * (r + x) / (alpha + t_x)
        d_a = digamma(a + b) - digamma(a + b + x) + w_dropped / a
        d_b = (
            digamma(b + x)
            - digamma(a + b + x)
            - digamma(b)
            + digamma(a + b)
            - np.where(x > 0, w_dropped / np.maximum(b + x - 1, 1e-300), 0.0)
        )
    return ll, np.vstack([d_r, d_alpha, d_a, d_b])


def _bg_tuple(params) -> tuple[float, float, float, float]:
    if isinstance(params, BgNbdParams):
        return params.r, params.alpha, params.a, params.b
    r, alpha, a, b = params
    return float(r), float(alpha), float(a), float(b)


def fit_bgnbd(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[BgNbdParams | None, float | None, str]:
    """Maximum-likelihood BG/NBD parameters, the log-likelihood, and a message if degenerate."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    n = len(x)
    if n < MIN_CUSTOMERS:
        return None, None, f"Only {n} customers with purchases: too few to fit BG/NBD."
    repeaters = int((x > 0).sum())
    if repeaters < MIN_REPEAT_CUSTOMERS:
        return (
            None,
            None,
            f"Only {repeaters} repeat buyers: BG/NBD needs repeat purchases to learn from.",
        )
    if float(T.max()) < MIN_HISTORY_DAYS:
        return None, None, f"Less than {MIN_HISTORY_DAYS} days of history: too early to fit."
    rows, weights = _compress(x, t_x, T)
    ux, ut, uT = rows[:, 0], rows[:, 1], rows[:, 2]

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        ll, grad = _bgnbd_ll_and_gradient(params, ux, ut, uT)
        value = -float(np.dot(weights, ll)) / n
        if not np.isfinite(value):
            return 1e12, np.zeros(4)
        # The gradient is taken with respect to log-parameters: d/dlog θ = θ · d/dθ.
        return value, -(grad @ weights) * params / n

    rate = max(float(x.sum()) / float(T.sum()), 1e-6)
    start = np.log([1.0, 1.0 / rate, 1.0, 3.0])
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4)
    if not result.success:
        result = minimize(
            lambda v: objective(v)[0], result.x, method="Nelder-Mead", options={"maxiter": 4000}
        )
    r, alpha, a, b = np.exp(result.x)
    log_likelihood = -float(result.fun) * n
    message = ""
    if not np.isfinite(log_likelihood) or not result.success:
        message = f"BG/NBD fit did not converge ({result.message})."
    elif max(r, alpha, a, b) > 1e5 or min(r, alpha, a, b) < 1e-5:
        message = "BG/NBD parameters at the edge of their range: the history says little yet."
    return BgNbdParams(float(r), float(alpha), float(a), float(b)), log_likelihood, message


def _hyp2f1_term(r, alpha, a, b, x, T, t):
    """((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; z), z = t/(α+T+t).

    When z nears 1 the series converges slowly and the direct form can overflow; Euler's
    transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the product into
    (1-z)^(a-1) · 2F1(a+b-1-r, a-1; a+b+x-1; z), whose terms stay bounded.
    """
    z = t / (alpha + T + t)
    c = a + b + x - 1
    with np.errstate(all="ignore"):
        direct = np.exp((r + x) * np.log1p(-z)) * hyp2f1(r + x, b + x, c, z)
        euler = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    use_euler = (z > 0.5) | ~np.isfinite(direct)
    value = np.where(use_euler & np.isfinite(euler), euler, direct)
    broken = ~np.isfinite(value)
    if broken.any():
        # scipy's hyp2f1 gives NaN for some large c; sum the Euler series directly there.
        zb, cb = np.broadcast_to(z, value.shape)[broken], np.broadcast_to(c, value.shape)[broken]
        series = _hyp2f1_series(a + b - 1 - r, a - 1, cb, zb)
        value = value.copy()
        value[broken] = np.exp((a - 1) * np.log1p(-zb)) * series
    return value


def _hyp2f1_series(A: float, B: float, C: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Gauss's series for 2F1(A, B; C; z), 0 <= z < 1, summed until the terms stop counting."""
    total = np.ones_like(z, dtype=float)
    term = np.ones_like(z, dtype=float)
    for k in range(200_000):
        term = term * (A + k) * (B + k) / ((C + k) * (k + 1)) * z
        total += term
        if np.all(np.abs(term) <= 1e-15 * np.abs(total)):
            break
    return total


def conditional_expected_purchases(
    params: BgNbdParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[X(T, T+t] | x, t_x, T]: expected purchases in the next `t` days (FHL 2005, eq. 10)."""
    r, alpha, a, b = _bg_tuple(params)
    if abs(a - 1) < 1e-6:
        a = 1 + 1e-6  # the closed form has (a-1) in a denominator; the limit is continuous
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if t <= 0:
        return np.zeros_like(x)
    numerator = (a + b + x - 1) / (a - 1) * (1 - _hyp2f1_term(r, alpha, a, b, x, T, t))
    result = numerator * probability_alive(params, x, t_x, T)
    return np.clip(np.nan_to_num(result, nan=0.0, posinf=0.0), 0.0, None)


def probability_alive(
    params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(still a customer | x, t_x, T) (FHL 2005, eq. 11), computed as a logistic of log-odds."""
    r, alpha, a, b = _bg_tuple(params)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = np.where(
            x > 0,
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
            -np.inf,
        )
    return expit(-log_odds_dead)


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


def fit_gamma_gamma(
    x: np.ndarray, m: np.ndarray
) -> tuple[GammaGammaParams | None, float | None, str]:
    """Maximum-likelihood Gamma-Gamma parameters over customers with x > 0 and m > 0."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    n = len(x)
    if n < MIN_REPEAT_CUSTOMERS:
        return None, None, f"Only {n} repeat buyers with a positive spend: Gamma-Gamma not fitted."
    if np.allclose(m, m[0]):
        return None, None, "Every repeat buyer spends the same: Gamma-Gamma has nothing to learn."
    scale = float(np.mean(m))
    ms = m / scale  # fitted in units of the mean spend, then γ is scaled back

    log_ms, log_x = np.log(ms), np.log(x)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = np.exp(log_params)
        value = -float(np.sum(gamma_gamma_log_likelihood((p, q, gamma), x, ms))) / n
        if not np.isfinite(value):
            return 1e12, np.zeros(3)
        px = p * x
        both = digamma(px + q)
        log_total = np.log(gamma + ms * x)
        d_p = np.sum(x * (both - digamma(px) + log_ms + log_x - log_total))
        d_q = np.sum(both - digamma(q) + np.log(gamma) - log_total)
        d_gamma = np.sum(q / gamma - (px + q) / (gamma + ms * x))
        return value, -np.array([d_p * p, d_q * q, d_gamma * gamma]) / n

    result = minimize(
        objective,
        np.log([2.0, 3.0, 2.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-10.0, 10.0)] * 3,
    )
    if not result.success:
        result = minimize(
            lambda v: objective(v)[0], result.x, method="Nelder-Mead", options={"maxiter": 4000}
        )
    p, q, gamma_scaled = np.exp(result.x)
    gamma = gamma_scaled * scale
    # The log-likelihood in the original units differs by the Jacobian of the rescaling.
    log_likelihood = -float(result.fun) * n - n * float(np.log(scale))
    message = ""
    if q <= 1:
        message = "Gamma-Gamma q <= 1: the mean spend is unbounded; own averages are used."
        return None, log_likelihood, message
    if not result.success:
        message = f"Gamma-Gamma fit did not converge ({result.message})."
    return GammaGammaParams(float(p), float(q), float(gamma)), log_likelihood, message


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
    monthly = (1 + annual_discount_rate) ** (1 / 12) - 1
    total = np.zeros(len(np.asarray(x)), dtype=float)
    previous = np.zeros_like(total)
    for month in range(1, months + 1):
        cumulative = conditional_expected_purchases(bg, month * DAYS_PER_MONTH, x, t_x, T)
        total += (cumulative - previous) / (1 + monthly) ** month
        previous = cumulative
    return total * np.asarray(spend, dtype=float)


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, m: np.ndarray) -> FitResult:
    """Fit both models on the calibration arrays and say, in words, what could not be fitted."""
    started = time.perf_counter()
    out = FitResult(customers=len(x), repeat_customers=int((np.asarray(x) > 0).sum()))
    bg, bg_ll, bg_message = fit_bgnbd(x, t_x, T)
    out.bgnbd, out.bgnbd_log_likelihood = bg, bg_ll
    if bg_message:
        out.messages.append(bg_message)
    gg, gg_ll, gg_message = fit_gamma_gamma(x, m)
    out.gamma_gamma, out.gamma_gamma_log_likelihood = gg, gg_ll
    if gg_message:
        out.messages.append(gg_message)
    out.seconds = time.perf_counter() - started
    return out


def simulate_bgnbd(
    params: BgNbdParams, T: np.ndarray, rng: np.random.Generator, *, horizon: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (x, t_x, purchases in (T, T+horizon]) for customers whose first purchase is at 0.

    Used by the tests and the benchmark: each customer buys as a Poisson process with a
    Gamma(r, α) rate and, after every repeat purchase, leaves for good with a Beta(a, b) chance.
    """
    n = len(T)
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    now = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    x = np.zeros(n, dtype=int)
    t_x = np.zeros(n)
    future = np.zeros(n, dtype=int)
    end = T + horizon
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1 / np.maximum(lam[idx], 1e-12))
        over = now[idx] > end[idx]
        alive[idx[over]] = False
        buying = idx[~over]
        in_calibration = now[buying] <= T[buying]
        x[buying[in_calibration]] += 1
        t_x[buying[in_calibration]] = now[buying[in_calibration]]
        future[buying[~in_calibration]] += 1
        leaving = rng.random(len(buying)) < p[buying]
        alive[buying[leaving]] = False
    return x, t_x, future


def simulate_gamma_gamma(
    params: GammaGammaParams, x: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The average of `x` purchase values per customer under Gamma-Gamma (0 where x is 0)."""
    x = np.asarray(x)
    nu = rng.gamma(params.q, 1 / params.gamma, len(x))
    totals = rng.gamma(np.maximum(params.p * x, 1e-12), 1 / nu)
    return np.where(x > 0, totals / np.maximum(x, 1), 0.0)
