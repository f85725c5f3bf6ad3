"""BG/NBD and Gamma-Gamma models of customer lifetime value (Fader, Hardie & Lee, 2005).

Pure numpy/scipy over arrays, one element per customer, with the textbook definitions
(`analytics.purchase_days`): `x` repeat purchase days (local days with a purchase after the
first), `t_x` days from the first purchase day to the last, `T` days from the first purchase day
to the end of the calibration period, `m` the mean net value of the repeat days. Likelihoods
are summed in log space (`gammaln`, `betaln`, log-sum-exp) and fitted by
`scipy.optimize.minimize` on the logarithms of the parameters, so they stay positive and a
parameter of 0.1 and one of 500 are equally easy for the optimiser.

Cost. One likelihood evaluation calls the special functions once per distinct `x` (a few
hundred values), not once per customer; per customer only logs and logistics remain.

Sampling. Above `max_customers` (default MAX_FIT_CUSTOMERS, 50,000) both models are fitted on
a random sample of that many customers, the same one for both, drawn with a fixed seed so the
same arrays give the same sample and the same parameters; `FitResult.sampled` says so. Why
50,000: the standard error of a maximum-likelihood estimate falls as 1/sqrt(n), so beyond some
tens of thousands of customers more data moves the parameters far less than the model's own
error moves any prediction, while the fit's cost keeps growing; a chain of a million customers
then costs little more than one of 50,000. The measurements behind that choice are in
bench/README.md ("Analytics CLV models and campaigns (issue 16, h16c)"). The log-likelihoods
returned are evaluated once, at the end, on all the customers given (one cheap evaluation), so
they compare across nights whether or not a sample was used.

Warm start. `fit` takes the previous fit's parameters (`start_bg`, `start_gg`) and starts the
optimiser there: yesterday's optimum is a few iterations from today's. The warm run is kept only
if it converged to a likelihood at least as good as both the cold starting point's and the
optimum of a quick cold fit on PILOT_CUSTOMERS customers; otherwise (a failed run, a previous fit
stuck on the ridge where a and b grow together, absurd parameters) the cold start runs as well
and the better of the two is kept, so one bad night cannot trap the following ones.
"""

from . import bgnbd, gamma_gamma, optimiser
from .bgnbd import (
    BgNbdPredictor,
    bgnbd_log_likelihood,
    conditional_expected_purchases,
    fit_bgnbd,
    probability_alive,
    simulate_bgnbd,
)
from .fit import fit, predicted_clv
from .gamma_gamma import (
    conditional_expected_spend,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    simulate_gamma_gamma,
)
from .params import (
    BGNBD_LOG_BOUND,
    DAYS_PER_MONTH,
    GAMMA_GAMMA_LOG_BOUND,
    MAX_FIT_CUSTOMERS,
    BgNbdParams,
    FitResult,
    GammaGammaParams,
    Note,
)

__all__ = [
    "BGNBD_LOG_BOUND",
    "DAYS_PER_MONTH",
    "GAMMA_GAMMA_LOG_BOUND",
    "MAX_FIT_CUSTOMERS",
    "BgNbdParams",
    "BgNbdPredictor",
    "FitResult",
    "GammaGammaParams",
    "Note",
    "bgnbd",
    "bgnbd_log_likelihood",
    "conditional_expected_purchases",
    "conditional_expected_spend",
    "fit",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma",
    "gamma_gamma_log_likelihood",
    "optimiser",
    "predicted_clv",
    "probability_alive",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
]
