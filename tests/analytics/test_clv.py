"""BG/NBD and Gamma-Gamma: parameter recovery, the expected-purchases formula, degenerate data.

Tolerances: data simulated from known parameters (8,000 customers, fixed seed) must give each
parameter back within 20% relative error; the conditional expected purchases summed over the
base must match the simulated future purchases within 5%.
"""

import numpy as np
import pytest

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
