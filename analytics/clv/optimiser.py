"""The optimiser shared by both models: grouping of identical customers, the fixed-seed
sample, and the warm/cold-start minimisation on log-parameters (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from .params import SAMPLE_SEED, Objective


def _packed_key(columns: list[np.ndarray]) -> np.ndarray | None:
    """One int64 per row that sorts like the rows, if every column holds small whole numbers."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    total_span = 1
    for column in columns:
        whole = np.isfinite(column) & (column >= 0) & (column == np.floor(column))
        if not whole.all():
            return None
        span = int(column.max()) + 1
        total_span *= span
        if total_span >= 2**62:
            return None
        key = key * span + column.astype(np.int64)
    return key


def _group(
    columns: list[np.ndarray], *, inverse: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Rows grouped by equal values: one row index per group, group sizes, each row's group.

    Groups come in the lexicographic order of `np.unique(axis=0)`, which sorts a structured view
    and takes 0.25 s on 200k rows; days and counts are whole numbers, so they usually pack into
    one integer key that sorts ten times faster.
    """
    n = len(columns[0])
    if n == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, empty if inverse else None
    new = np.empty(n, dtype=bool)
    new[0] = True
    key = _packed_key(columns)
    if key is not None:
        order = np.argsort(key)
        ordered = key[order]
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    else:
        order = np.lexsort(columns[::-1])
        new[1:] = False
        for column in columns:
            ordered = column[order]
            new[1:] |= ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, n))
    groups = None
    if inverse:
        groups = np.empty(n, dtype=np.intp)
        groups[order] = np.cumsum(new) - 1
    return order[starts], counts, groups


def _compress(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows and their counts: many customers share (x, t_x, T) once times are in days."""
    arrays = [np.asarray(c, dtype=float) for c in columns]
    first, counts, _ = _group(arrays)
    return np.column_stack([c[first] for c in arrays]), counts.astype(float)


def _sample(n: int, max_customers: int | None) -> np.ndarray | None:
    """Sorted indices of a fixed-seed random sample of `max_customers` of `n`, or None for all."""
    if max_customers is None or n <= max_customers:
        return None
    rng = np.random.default_rng(SAMPLE_SEED)
    return np.sort(rng.choice(n, size=max_customers, replace=False))


def _sample_spoils(sample: np.ndarray, problem: Callable[..., str], *arrays: np.ndarray) -> bool:
    """Whether the sample is degenerate where all the customers are not (then fit them all)."""
    return bool(problem(*(a[sample] for a in arrays))) and not problem(*arrays)


def _wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """Σ weights·values over customers, without BLAS: OpenBLAS wakes its threads for a long dot
    product, and on a busy two-core machine that hand-off made whole fits 2-5x slower."""
    return float(np.sum(weights * values))


def _log_start(values: tuple[float, ...] | None) -> np.ndarray | None:
    """Log-parameters of a warm start, or None when there is none or it is not a valid point."""
    if values is None:
        return None
    values = np.asarray(values, dtype=float)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        return None
    return np.log(values)


def _log_space_objective(data, n_params: int) -> Objective:
    """Minus the mean log-likelihood of `data` and its gradient, in log-parameters (both models
    fit positive parameters; optimising their logs keeps them positive without bounds)."""

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        with np.errstate(all="ignore"):
            ll, grad = data.log_likelihood(params, gradient=True)
        value = -ll / data.n
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e12, np.zeros(n_params)
        # The gradient is taken with respect to log-parameters: d/dlog θ = θ · d/dθ.
        return value, -grad * params / data.n

    return objective


def _minimise(objective, start: np.ndarray, bound: float) -> OptimizeResult:
    bounds = [(-bound, bound)] * len(start)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    if not result.success:
        result = minimize(
            lambda v: objective(v)[0], result.x, method="Nelder-Mead", options={"maxiter": 4000}
        )
    return result


def _optimise(
    objective: Objective,
    cold: np.ndarray,
    warm: np.ndarray | None,
    bound: float,
    pilot: Callable[[], Objective],
) -> tuple[OptimizeResult, str]:
    """Minimise from the warm start when it holds up, else keep the better of a warm and a cold run.

    The warm run is kept when it converged to a value no worse than both the cold starting point
    and the optimum of a quick cold fit on a small sample (`pilot()`, PILOT_CUSTOMERS customers),
    a rough but unbiased idea of where the optimum lies. A warm run that stops on the flat ridge
    where a and b grow together, or in any other poor spot, fails that test, and a bad fit from
    one night cannot pin the following ones there.
    """
    if warm is None:
        return _minimise(objective, cold, bound), "cold"
    warm_result = _minimise(objective, np.clip(warm, -bound, bound), bound)
    cold_result = None
    if warm_result.success and np.isfinite(warm_result.fun):
        pilot_objective = pilot()
        rough = _minimise(pilot_objective, cold, bound)
        if pilot_objective is objective:
            cold_result = rough
        if warm_result.fun <= min(objective(cold)[0], objective(rough.x)[0]):
            return warm_result, "warm"
    if cold_result is None:
        cold_result = _minimise(objective, cold, bound)
    if (warm_result.success, -warm_result.fun) > (cold_result.success, -cold_result.fun):
        return warm_result, "warm"
    return cold_result, "cold, warm start rejected"
