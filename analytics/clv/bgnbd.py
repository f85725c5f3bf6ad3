"""BG/NBD: the purchase-and-dropout model (likelihood, fit, predictions, simulation)."""

from __future__ import annotations

import numpy as np
from django.utils.translation import gettext_noop
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from .optimiser import (
    _group,
    _log_space_objective,
    _log_start,
    _optimise,
    _sample,
    _sample_spoils,
    _wsum,
)
from .params import (
    BGNBD_LOG_BOUND,
    DAYS_PER_MONTH,
    MAX_FIT_CUSTOMERS,
    MIN_CUSTOMERS,
    MIN_HISTORY_DAYS,
    MIN_REPEAT_CUSTOMERS,
    PILOT_CUSTOMERS,
    BgNbdParams,
    Note,
    Objective,
    _bg_tuple,
)


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


class _BgNbdData:
    """Weighted (x, t_x, T) rows arranged so that one evaluation of the summed log-likelihood
    calls `gammaln`, `betaln` and `digamma` once per distinct x, and customers without a repeat
    purchase, who cannot have dropped out, skip the log-sum-exp."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray):
        self.n = float(weights.sum())
        self.xs, groups = np.unique(x, return_inverse=True)
        self.x_weights = np.bincount(groups, weights=weights, minlength=len(self.xs))
        zero = x == 0
        self.T0, self.w0 = T[zero], weights[zero]
        self.x1, self.t1, self.T1, self.w1 = x[~zero], t_x[~zero], T[~zero], weights[~zero]

    def log_likelihood(self, params, *, gradient: bool = False) -> tuple[float, np.ndarray | None]:
        """The summed log-likelihood and, if asked, its gradient in (r, α, a, b)."""
        r, alpha, a, b = params
        xs, xw, n = self.xs, self.x_weights, self.n
        log_alpha = float(np.log(alpha))
        ll = xw @ (gammaln(r + xs) + betaln(a, b + xs)) + n * (
            r * log_alpha - gammaln(r) - betaln(a, b)
        )
        alpha_T0 = alpha + self.T0
        log_T0 = np.log(alpha_T0)
        ll -= r * _wsum(self.w0, log_T0)
        # log(alive + dropped) = log(alive) + softplus(log odds of having dropped out).
        rx = r + self.x1
        alpha_T1, alpha_t1 = alpha + self.T1, alpha + self.t1
        log_T1, log_t1 = np.log(alpha_T1), np.log(alpha_t1)
        b_x = b + self.x1 - 1
        odds = np.log(a) - np.log(b_x) + rx * (log_T1 - log_t1)
        ll += _wsum(self.w1, np.logaddexp(0.0, odds) - rx * log_T1)
        if not gradient:
            return float(ll), None
        w_dropped = self.w1 * expit(odds)
        w_alive = self.w1 - w_dropped
        d_r = (
            xw @ digamma(r + xs)
            + n * (log_alpha - digamma(r))
            - _wsum(self.w0, log_T0)
            - _wsum(w_alive, log_T1)
            - _wsum(w_dropped, log_t1)
        )
        d_alpha = (
            n * r / alpha
            - r * _wsum(self.w0, 1 / alpha_T0)
            - _wsum(w_alive, rx / alpha_T1)
            - _wsum(w_dropped, rx / alpha_t1)
        )
        d_a = xw @ (digamma(a + b) - digamma(a + b + xs)) + w_dropped.sum() / a
        d_b = (
            xw @ (digamma(b + xs) - digamma(a + b + xs))
            + n * (digamma(a + b) - digamma(b))
            - _wsum(w_dropped, 1 / b_x)
        )
        return float(ll), np.array([d_r, d_alpha, d_a, d_b])


def _bgnbd_problem(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> str:
    """Why these customers cannot be fitted, or "" if they can."""
    n = len(x)
    if n < MIN_CUSTOMERS:
        return Note(
            gettext_noop("Only %(n)d customers with purchases: too few to fit BG/NBD."), n=n
        )
    repeaters = int((x > 0).sum())
    if repeaters < MIN_REPEAT_CUSTOMERS:
        return Note(
            gettext_noop("Only %(n)d repeat buyers: BG/NBD needs repeat purchases to learn from."),
            n=repeaters,
        )
    if float(T.max()) < MIN_HISTORY_DAYS:
        return Note(
            gettext_noop("Less than %(days)d days of history: too early to fit."),
            days=MIN_HISTORY_DAYS,
        )
    return ""


def _bgnbd_data(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> _BgNbdData:
    first, counts, _ = _group([x, t_x, T])
    return _BgNbdData(x[first], t_x[first], T[first], counts.astype(float))


def _bgnbd_objective(data: _BgNbdData) -> Objective:
    """Minus the mean log-likelihood and its gradient, in log-parameters (r, α, a, b)."""
    return _log_space_objective(data, 4)


def _fit_bgnbd(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    sample: np.ndarray | None,
    start_bg: BgNbdParams | None,
) -> tuple[BgNbdParams | None, float | None, str, str]:
    problem = _bgnbd_problem(x, t_x, T)
    if problem:
        return None, None, problem, ""
    fx, ft, fT = (x, t_x, T) if sample is None else (x[sample], t_x[sample], T[sample])
    data = _bgnbd_data(fx, ft, fT)
    objective = _bgnbd_objective(data)

    def pilot() -> Objective:
        rows = _sample(len(fx), PILOT_CUSTOMERS)
        if rows is None:
            return objective
        return _bgnbd_objective(_bgnbd_data(fx[rows], ft[rows], fT[rows]))

    rate = max(float(fx.sum()) / float(fT.sum()), 1e-6)
    cold = np.log([1.0, 1.0 / rate, 1.0, 3.0])
    warm = _log_start(_bg_tuple(start_bg) if start_bg is not None else None)
    result, how = _optimise(objective, cold, warm, BGNBD_LOG_BOUND, pilot)
    r, alpha, a, b = np.exp(result.x)
    if sample is None:
        log_likelihood = -float(result.fun) * data.n
    else:
        with np.errstate(all="ignore"):
            log_likelihood, _ = _BgNbdData(x, t_x, T, np.ones(len(x))).log_likelihood(
                (r, alpha, a, b)
            )
    message = ""
    if not np.isfinite(log_likelihood) or not result.success:
        message = Note(
            gettext_noop("BG/NBD fit did not converge (%(reason)s)."), reason=str(result.message)
        )
    elif max(r, alpha, a, b) > 1e5 or min(r, alpha, a, b) < 1e-5:
        message = Note(
            gettext_noop(
                "BG/NBD parameters at the edge of their range: the history says little yet."
            )
        )
    params = BgNbdParams(float(r), float(alpha), float(a), float(b))
    return params, log_likelihood, message, how


def fit_bgnbd(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    *,
    start_bg: BgNbdParams | None = None,
    max_customers: int | None = MAX_FIT_CUSTOMERS,
) -> tuple[BgNbdParams | None, float | None, str]:
    """Maximum-likelihood BG/NBD parameters, the log-likelihood, and a message if degenerate.

    Above `max_customers` the parameters come from a fixed-seed sample; the log-likelihood is
    always over all the customers given.
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    sample = _sample(len(x), max_customers)
    if sample is not None and _sample_spoils(sample, _bgnbd_problem, x, t_x, T):
        sample = None
    params, log_likelihood, message, _how = _fit_bgnbd(x, t_x, T, sample, start_bg)
    return params, log_likelihood, message


def _hyp2f1_term(r, alpha, a, b, x, T, t):
    """((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; z), z = t/(α+T+t).

    When z nears 1 the series converges slowly and the direct form can overflow; Euler's
    transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the product into
    (1-z)^(a-1) · 2F1(a+b-1-r, a-1; a+b+x-1; z), whose terms stay bounded. It is evaluated only
    where it is used (z > 0.5 or the direct form is not finite), not for every customer.
    """
    x, T, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, T, t)))
    shape = x.shape
    x, T, t = (v.ravel() for v in (x, T, t))
    z = t / (alpha + T + t)
    c = a + b + x - 1
    with np.errstate(all="ignore"):
        value = np.exp((r + x) * np.log1p(-z)) * hyp2f1(r + x, b + x, c, z)
        euler = (z > 0.5) | ~np.isfinite(value)
        if euler.any():
            ze, ce = z[euler], c[euler]
            transformed = np.exp((a - 1) * np.log1p(-ze)) * hyp2f1(a + b - 1 - r, a - 1, ce, ze)
            value[euler] = np.where(np.isfinite(transformed), transformed, value[euler])
    broken = ~np.isfinite(value)
    if broken.any():
        # scipy's hyp2f1 gives NaN for some large c; sum the Euler series directly there.
        zb = z[broken]
        series = _hyp2f1_series(a + b - 1 - r, a - 1, c[broken], zb)
        value[broken] = np.exp((a - 1) * np.log1p(-zb)) * series
    return value.reshape(shape)


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


class BgNbdPredictor:
    """BG/NBD predictions for one set of customers, sharing the work between horizons.

    P(alive) does not depend on the horizon, so it is computed once; the hypergeometric term
    depends only on (x, T) and the horizon, and customers share far fewer (x, T) pairs than there
    are customers (13,611 among 200k in the benchmark), so it is evaluated once per pair.
    `conditional_expected_purchases` and `predicted_clv` build one per call; a caller that needs
    P(alive), several horizons and the CLV of the same customers builds one and asks it all.
    """

    def __init__(self, params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
        self.params = params
        x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
        self.shape = x.shape
        x, t_x, T = (v.ravel() for v in (x, t_x, T))
        self.p_alive = probability_alive(params, x, t_x, T).reshape(self.shape)
        first, _counts, self._pair = _group([x, T], inverse=True)
        self._x, self._T = x[first], T[first]
        r, alpha, a, b = _bg_tuple(params)
        if abs(a - 1) < 1e-6:
            a = 1 + 1e-6  # the closed form has (a-1) in a denominator; the limit is continuous
        self._params = (r, alpha, a, b)
        self._factor = (a + b + self._x - 1) / (a - 1)

    def expected_purchases(self, t: float) -> np.ndarray:
        """E[X(T, T+t] | x, t_x, T]: expected purchases in the next `t` days (FHL 2005, eq. 10)."""
        if t <= 0:
            return np.zeros(self.shape)
        r, alpha, a, b = self._params
        numerator = self._factor * (1 - _hyp2f1_term(r, alpha, a, b, self._x, self._T, t))
        result = numerator[self._pair].reshape(self.shape) * self.p_alive
        return np.clip(np.nan_to_num(result, nan=0.0, posinf=0.0), 0.0, None)

    def clv(self, spend: np.ndarray, *, months: int, annual_discount_rate: float) -> np.ndarray:
        """Spend times the purchases expected in each coming month, discounted monthly."""
        monthly = (1 + annual_discount_rate) ** (1 / 12) - 1
        total = np.zeros(self.shape, dtype=float)
        previous = np.zeros_like(total)
        for month in range(1, months + 1):
            cumulative = self.expected_purchases(month * DAYS_PER_MONTH)
            total += (cumulative - previous) / (1 + monthly) ** month
            previous = cumulative
        return total * np.asarray(spend, dtype=float)


def conditional_expected_purchases(
    params: BgNbdParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[X(T, T+t] | x, t_x, T]: expected purchases in the next `t` days (FHL 2005, eq. 10)."""
    if t <= 0:
        return np.zeros_like(np.asarray(x, dtype=float))
    return BgNbdPredictor(params, x, t_x, T).expected_purchases(t)


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
