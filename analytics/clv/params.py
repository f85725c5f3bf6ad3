"""The models' parameters, limits and results: what the fits take and give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.utils.translation import gettext

# Below these the likelihood surface is too flat to mean anything; we say so instead of fitting.
MIN_CUSTOMERS = 10
MIN_REPEAT_CUSTOMERS = 5
MIN_HISTORY_DAYS = 28
DAYS_PER_MONTH = 365.25 / 12
# Above this many customers the models are fitted on a random sample (see the module docstring).
MAX_FIT_CUSTOMERS = 50_000
SAMPLE_SEED = 2005
# A warm-started fit is checked against a quick cold fit on this many customers.
PILOT_CUSTOMERS = 5_000
# The optimisers search log-parameters within ±these bounds.
BGNBD_LOG_BOUND = 12.0
GAMMA_GAMMA_LOG_BOUND = 10.0


# An optimiser objective: log-parameters -> (value, gradient).
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


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


class Note(str):
    """A message about a fit, in English, that keeps its template and values.

    The fit runs in a Celery worker with no reader and no language; the English text is what
    the logs and the stored `message` get, and `as_json` is what the dashboard translates into
    the reader's language later (`translate`). The templates are marked for makemessages.
    """

    template: str
    params: dict

    def __new__(cls, template: str, **params) -> Note:
        note = super().__new__(cls, template % params)
        note.template, note.params = template, params
        return note

    def as_json(self) -> dict:
        return {"text": self.template, "params": self.params}

    @staticmethod
    def translate(stored: dict) -> str:
        return gettext(stored["text"]) % stored["params"]


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
    # How many of `customers` the models were fitted on when that was a sample; 0 means all.
    sampled: int = 0
    # Where each optimiser started: "cold", "warm" or "cold, warm start rejected".
    bgnbd_start: str = ""
    gamma_gamma_start: str = ""

    @property
    def message(self) -> str:
        return " ".join(self.messages)

    @property
    def notes(self) -> list[dict]:
        return [m.as_json() for m in self.messages if isinstance(m, Note)]


def _bg_tuple(params) -> tuple[float, float, float, float]:
    if isinstance(params, BgNbdParams):
        return params.r, params.alpha, params.a, params.b
    r, alpha, a, b = params
    return float(r), float(alpha), float(a), float(b)
