"""BG/NBD and Gamma-Gamma: parameter recovery, the expected-purchases formula, degenerate data.

Tolerances: data simulated from known parameters (8,000 customers, fixed seed) must give each
parameter back within 20% relative error, and so must a fit on a 20,000-customer sample of
60,000; the conditional expected purchases summed over the base must match the simulated future
purchases within 5%. The restructured predictions must equal the former per-call formulas
(kept below as references) to 1e-9 relative, the hypergeometric term exactly.
"""

import numpy as np
import pytest
from scipy.special import hyp2f1

from analytics import clv

TRUE_BG = clv.BgNbdParams(r=0.5, alpha=30.0, a=0.8, b=2.5)
TRUE_GG = clv.GammaGammaParams(p=6.0, q=4.0, gamma=1500.0)
TOLERANCE = 0.20


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(20260630)
    T = np.floor(rng.uniform(90, 1095, 8000))
    x, t_x, future = clv.simulate_bgnbd(TRUE_BG, T, rng, horizon=180.0)
    m = clv.simulate_gamma_gamma(TRUE_GG, x, rng)
    return x, t_x, T, m, future


def relative_errors(fitted, true) -> dict[str, float]:
    return {k: abs(getattr(fitted, k) / v - 1) for k, v in vars(true).items()}


def test_bgnbd_recovers_the_parameters_it_was_simulated_from(simulated):
    x, t_x, T, _m, _future = simulated
    fitted, log_likelihood, message = clv.fit_bgnbd(x, t_x, T)
    assert message == ""
    errors = relative_errors(fitted, TRUE_BG)
    assert max(errors.values()) < TOLERANCE, errors
    # The maximum is a maximum: the true parameters explain the data no better.
    assert log_likelihood >= clv.bgnbd_log_likelihood(TRUE_BG, x, t_x, T).sum()


def test_gamma_gamma_recovers_the_parameters_it_was_simulated_from(simulated):
    x, _t_x, _T, m, _future = simulated
    fitted, _ll, message = clv.fit_gamma_gamma(x, m)
    assert message == ""
    errors = relative_errors(fitted, TRUE_GG)
    assert max(errors.values()) < TOLERANCE, errors


def test_conditional_expected_purchases_match_a_monte_carlo_of_the_next_180_days(simulated):
    x, t_x, T, _m, future = simulated
    expected = clv.conditional_expected_purchases(TRUE_BG, 180.0, x, t_x, T)
    assert abs(expected.sum() / future.sum() - 1) < 0.05
    # Per group too: the customers who have not bought for a long time are expected to buy less.
    quiet = (T - t_x) > 365
    assert abs(expected[quiet].sum() / max(future[quiet].sum(), 1) - 1) < 0.15


def test_expected_purchases_stay_finite_and_grow_with_the_horizon_far_beyond_the_data():
    params = clv.BgNbdParams(r=2.0, alpha=5.0, a=3.0, b=0.5)
    x = np.array([0, 1, 40, 300])
    t_x = np.array([0.0, 10, 900, 1000])
    T = np.array([5.0, 20, 1000, 1000])
    values = [clv.conditional_expected_purchases(params, t, x, t_x, T) for t in (30, 3650, 36500)]
    assert all(np.isfinite(v).all() and (v >= 0).all() for v in values)
    assert (values[0] <= values[1]).all() and (values[1] <= values[2]).all()


def test_probability_alive_is_one_without_repeat_purchases_and_falls_with_silence():
    x = np.array([0, 5, 5])
    t_x = np.array([0.0, 300, 100])
    T = np.array([400.0, 400, 400])
    alive = clv.probability_alive(TRUE_BG, x, t_x, T)
    assert alive[0] == 1.0
    assert 0 < alive[2] < alive[1] < 1


def test_no_repeat_buyers_gives_a_message_not_a_fit():
    x = np.zeros(500)
    T = np.full(500, 200.0)
    result = clv.fit(x, x, T, np.full(500, 1000.0))
    assert result.bgnbd is None and result.gamma_gamma is None
    assert "repeat" in result.message


def test_one_customer_gives_a_message_not_a_fit():
    result = clv.fit(np.array([3.0]), np.array([50.0]), np.array([90.0]), np.array([700.0]))
    assert result.bgnbd is None
    assert "too few" in result.message


def test_a_store_that_just_opened_gives_a_message_not_a_fit():
    rng = np.random.default_rng(1)
    T = np.floor(rng.uniform(1, 14, 300))
    x = rng.integers(0, 3, 300).astype(float)
    t_x = np.minimum(T, x * 3)
    result = clv.fit(x, t_x, T, np.full(300, 500.0))
    assert result.bgnbd is None
    assert "too early" in result.message


def test_equal_spend_everywhere_leaves_gamma_gamma_unfitted_and_uses_own_averages():
    x = np.array([1.0, 2, 3, 4, 5, 6])
    m = np.full(6, 800.0)
    params, _ll, message = clv.fit_gamma_gamma(x, m)
    assert params is None and "same" in message
    assert (clv.conditional_expected_spend(None, x, m) == 800.0).all()


def test_clv_is_discounted_spend_times_expected_purchases():
    x = np.array([4.0])
    t_x = np.array([300.0])
    T = np.array([320.0])
    spend = np.array([1000.0])
    undiscounted = clv.predicted_clv(TRUE_BG, spend, x, t_x, T, months=12, annual_discount_rate=0)
    discounted = clv.predicted_clv(TRUE_BG, spend, x, t_x, T, months=12, annual_discount_rate=0.2)
    year = clv.conditional_expected_purchases(TRUE_BG, 12 * clv.DAYS_PER_MONTH, x, t_x, T)
    assert undiscounted == pytest.approx(1000 * year)
    assert discounted < undiscounted


# Sampled and warm-started fits. The sampled fit must recover the parameters within the same
# TOLERANCE as the full one; a warm start must reach the cold start's optimum, whatever it is.


@pytest.fixture(scope="module")
def large():
    rng = np.random.default_rng(20261124)
    T = np.floor(rng.uniform(90, 1095, 60_000))
    x, t_x, _future = clv.simulate_bgnbd(TRUE_BG, T, rng)
    m = clv.simulate_gamma_gamma(TRUE_GG, x, rng)
    return x, t_x, T, m


def test_a_sampled_fit_recovers_the_parameters_and_says_it_sampled(large):
    x, t_x, T, m = large
    result = clv.fit(x, t_x, T, m, max_customers=20_000)
    assert result.sampled == 20_000 and result.customers == 60_000
    assert result.message == ""
    errors = relative_errors(result.bgnbd, TRUE_BG) | relative_errors(result.gamma_gamma, TRUE_GG)
    assert max(errors.values()) < TOLERANCE, errors
    # The log-likelihoods are over all 60,000 customers, not over the sample.
    full_bg = clv.bgnbd_log_likelihood(result.bgnbd, x, t_x, T).sum()
    assert result.bgnbd_log_likelihood == pytest.approx(full_bg, rel=1e-9)
    repeat = x > 0
    full_gg = clv.gamma_gamma_log_likelihood(result.gamma_gamma, x[repeat], m[repeat]).sum()
    assert result.gamma_gamma_log_likelihood == pytest.approx(full_gg, rel=1e-9)


def test_the_same_input_gives_the_same_sample_and_the_same_parameters(large):
    x, t_x, T, m = large
    first = clv.fit(x, t_x, T, m, max_customers=20_000)
    second = clv.fit(x.copy(), t_x.copy(), T.copy(), m.copy(), max_customers=20_000)
    assert first.bgnbd == second.bgnbd and first.gamma_gamma == second.gamma_gamma
    assert first.bgnbd_log_likelihood == second.bgnbd_log_likelihood
    # The single-model functions draw the same sample as fit().
    assert clv.fit_bgnbd(x, t_x, T, max_customers=20_000)[0] == first.bgnbd
    assert clv.fit_gamma_gamma(x, m, max_customers=20_000)[0] == first.gamma_gamma


def test_no_sample_at_or_below_the_cap(simulated, large):
    x, t_x, T, m, _future = simulated
    assert clv.fit(x, t_x, T, m).sampled == 0
    x, t_x, T, m = large
    assert clv.fit(x, t_x, T, m, max_customers=None).sampled == 0
    assert clv.fit(x, t_x, T, m, max_customers=60_000).sampled == 0


def test_a_sample_too_thin_to_fit_falls_back_to_every_customer():
    rng = np.random.default_rng(5)
    T = np.floor(rng.uniform(100, 400, 400))
    x = np.zeros(400)
    x[:8] = [1, 2, 3, 1, 4, 2, 5, 1]  # 8 repeat buyers: a sample of 50 holds about one
    t_x = np.where(x > 0, np.floor(T * 0.6), 0.0)
    m = rng.uniform(300, 900, 400)
    result = clv.fit(x, t_x, T, m, max_customers=50)
    assert result.sampled == 0
    assert result.bgnbd is not None and "repeat" not in result.message


def test_a_warm_start_from_the_true_parameters_reaches_the_cold_optimum(simulated):
    x, t_x, T, m, _future = simulated
    cold = clv.fit(x, t_x, T, m)
    warm = clv.fit(x, t_x, T, m, start_bg=TRUE_BG, start_gg=TRUE_GG)
    assert (cold.bgnbd_start, cold.gamma_gamma_start) == ("cold", "cold")
    assert (warm.bgnbd_start, warm.gamma_gamma_start) == ("warm", "warm")
    assert warm.bgnbd_log_likelihood == pytest.approx(cold.bgnbd_log_likelihood, rel=1e-8)
    assert warm.gamma_gamma_log_likelihood == pytest.approx(
        cold.gamma_gamma_log_likelihood, rel=1e-8
    )
    assert max(relative_errors(warm.bgnbd, cold.bgnbd).values()) < 1e-3
    assert max(relative_errors(warm.gamma_gamma, cold.gamma_gamma).values()) < 1e-3


def test_a_warm_start_from_absurd_parameters_falls_back_to_the_cold_start(simulated):
    x, t_x, T, m, _future = simulated
    cold = clv.fit(x, t_x, T, m)
    # From here L-BFGS-B stops on the flat ridge where a and b grow together, some 500
    # log-likelihood units below the optimum; the quick cold check catches it.
    absurd_bg = clv.BgNbdParams(r=1e6, alpha=1e6, a=1e6, b=1e6)
    absurd_gg = clv.GammaGammaParams(p=1e-6, q=1e6, gamma=1e-6)
    result = clv.fit(x, t_x, T, m, start_bg=absurd_bg, start_gg=absurd_gg)
    assert result.bgnbd_start == "cold, warm start rejected"
    assert result.bgnbd == cold.bgnbd
    assert result.message == ""
    # Gamma-Gamma finds its way back from its absurd start either way.
    assert max(relative_errors(result.gamma_gamma, cold.gamma_gamma).values()) < 1e-3


def test_a_warm_start_that_is_not_a_point_is_ignored(simulated):
    x, t_x, T, m, _future = simulated
    cold = clv.fit(x, t_x, T, m)
    broken = clv.BgNbdParams(r=float("nan"), alpha=30.0, a=-1.0, b=2.5)
    result = clv.fit(x, t_x, T, m, start_bg=broken, start_gg=clv.GammaGammaParams(0.0, 4.0, 1.0))
    assert (result.bgnbd_start, result.gamma_gamma_start) == ("cold", "cold")
    assert result.bgnbd == cold.bgnbd and result.gamma_gamma == cold.gamma_gamma


def test_compress_groups_rows_like_numpy_unique():
    rng = np.random.default_rng(9)
    whole = [rng.integers(0, 6, 3000).astype(float) for _ in range(3)]
    fractional = [whole[0], whole[1] + 0.5 * rng.integers(0, 2, 3000), -whole[2]]
    for columns in (whole, fractional):
        rows, counts = clv.optimiser._compress(*columns)
        expected_rows, expected_counts = np.unique(
            np.column_stack(columns), axis=0, return_counts=True
        )
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(counts, expected_counts)


# The formulas as they were before the predictions were restructured (every customer, both
# hypergeometric forms, P(alive) on every call): the new code must give the same numbers.


def reference_hyp2f1_term(r, alpha, a, b, x, T, t):
    z = t / (alpha + T + t)
    c = a + b + x - 1
    with np.errstate(all="ignore"):
        direct = np.exp((r + x) * np.log1p(-z)) * hyp2f1(r + x, b + x, c, z)
        euler = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    use_euler = (z > 0.5) | ~np.isfinite(direct)
    value = np.where(use_euler & np.isfinite(euler), euler, direct)
    broken = ~np.isfinite(value)
    if broken.any():
        zb, cb = np.broadcast_to(z, value.shape)[broken], np.broadcast_to(c, value.shape)[broken]
        # Gauss's series is no part of what changed: the module's own one serves.
        series = clv.bgnbd._hyp2f1_series(a + b - 1 - r, a - 1, cb, zb)
        value = value.copy()
        value[broken] = np.exp((a - 1) * np.log1p(-zb)) * series
    return value


def reference_expected_purchases(params, t, x, t_x, T):
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1) < 1e-6:
        a = 1 + 1e-6
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if t <= 0:
        return np.zeros_like(x)
    numerator = (a + b + x - 1) / (a - 1) * (1 - reference_hyp2f1_term(r, alpha, a, b, x, T, t))
    result = numerator * clv.probability_alive(params, x, t_x, T)
    return np.clip(np.nan_to_num(result, nan=0.0, posinf=0.0), 0.0, None)


def reference_clv(bg, spend, x, t_x, T, *, months, annual_discount_rate):
    monthly = (1 + annual_discount_rate) ** (1 / 12) - 1
    total = np.zeros(len(np.asarray(x)), dtype=float)
    previous = np.zeros_like(total)
    for month in range(1, months + 1):
        cumulative = reference_expected_purchases(bg, month * clv.DAYS_PER_MONTH, x, t_x, T)
        total += (cumulative - previous) / (1 + monthly) ** month
        previous = cumulative
    return total * np.asarray(spend, dtype=float)


PARAMETER_SETS = [
    TRUE_BG,
    clv.BgNbdParams(r=2.0, alpha=5.0, a=3.0, b=0.5),
    clv.BgNbdParams(r=3.48, alpha=377.7, a=0.0002, b=1251.7),  # the benchmark's fit
    clv.BgNbdParams(r=1.0, alpha=10.0, a=1 + 1e-7, b=2.0),  # a ≈ 1, where the form is adjusted
    clv.BgNbdParams(r=0.5, alpha=0.1, a=5.0, b=0.2),  # tiny α: z close to 1 everywhere
]


@pytest.mark.parametrize("params", PARAMETER_SETS, ids=lambda p: f"r={p.r},a={p.a}")
def test_hyp2f1_term_equals_the_formula_that_evaluated_both_forms_everywhere(params):
    x, T, t = np.meshgrid(
        [0, 1, 2, 5, 40, 300, 1500, 5000],
        [0, 1, 30, 365, 1095],
        [1, 30, 90, 365, 3650, 36500, 1e6],
        indexing="ij",
    )
    x, T, t = (v.ravel().astype(float) for v in (x, T, t))
    z = t / (params.alpha + T + t)
    assert (z > 0.999).any() and (z < 0.5).any()  # both forms and the far end are on the grid
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    expected = reference_hyp2f1_term(r, alpha, a, b, x, T, t)
    np.testing.assert_array_equal(clv.bgnbd._hyp2f1_term(r, alpha, a, b, x, T, t), expected)


@pytest.mark.parametrize("params", PARAMETER_SETS, ids=lambda p: f"r={p.r},a={p.a}")
def test_predictions_equal_the_per_customer_formulas_they_replace(simulated, params):
    x, t_x, T, m, _future = simulated
    # Extremes beside the simulated base: no history, very frequent buyers, long silences.
    x = np.concatenate([x, [0, 0, 1, 300, 1500, 40]])
    t_x = np.concatenate([t_x, [0, 0, 1, 1000, 1090, 10]])
    T = np.concatenate([T, [0, 1095, 2, 1000, 1095, 1095]])
    spend = np.concatenate([m, [0, 100, 200, 300, 400, 500]])
    predictor = clv.BgNbdPredictor(params, x, t_x, T)
    np.testing.assert_array_equal(predictor.p_alive, clv.probability_alive(params, x, t_x, T))
    for t in (0, 30, 90, 365, 3650):
        expected = reference_expected_purchases(params, t, x, t_x, T)
        got = clv.conditional_expected_purchases(params, t, x, t_x, T)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=0)
        np.testing.assert_allclose(predictor.expected_purchases(t), expected, rtol=1e-9, atol=0)
    for months, rate in ((12, 0.1), (36, 0.0)):
        expected = reference_clv(params, spend, x, t_x, T, months=months, annual_discount_rate=rate)
        got = clv.predicted_clv(params, spend, x, t_x, T, months=months, annual_discount_rate=rate)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=0)
