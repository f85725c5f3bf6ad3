"""The metrics pipeline: set-based SQL over receipts, one code path for the base and one customer.

A run builds temporary tables: `am_rc` (receipts per customer: counts, dates, and money from the
receipts' own totals and margins, which triggers keep equal to their lines, and their refunds, in
one pass in the covering index's order, with `am_rf`, the refunds per returned receipt), `am_dirty`
(customers whose history changed, see `History`), `am_dr` and `am_fav` (their receipts and
favourite categories, the only step that reads receipt lines; `write_favourites` stores them in a
table of their own) and `am_clv` (model predictions and the full run's RFM scores, and, in the full
run, the buyers' money as numerics, COPYed in binary from numpy); the final write joins them into
one row per customer (`base_sql`).
The full run fetches the buyers' columns and purchase days once (`fetch_buyers_and_days`, one
binary COPY) for the CLV fit and for the cut points (VIP entry level, RFM quintile boundaries,
`analytics.ranking`), stores the cut points in `ClassThresholds`, scores every buyer from the same
order (`am_clv`) and writes every metric in one statement. A one-customer refresh after a receipt
compares the customer's keys with the stored cut points instead, which ranks exactly like the full
run did (a test holds the two equal for every customer).

RFM quintiles: customers are ranked by row_number with a deterministic tiebreak and cut with
`ntile(5)`, which gives five equal groups even when thousands share one purchase count. Ties
are broken by the other two measures and then by id (frequency: receipts, revenue, last
purchase, id), so among one-receipt customers the bigger spenders score higher. `cume_dist`
was rejected because heavy ties would collapse the low quintiles into one.

Nightly versus from scratch: every run recomputes every customer's metrics from the receipts
(windows slide, recency ages, the model is refitted). Favourite categories and holiday affinity
depend only on a customer's own history, so a nightly run recomputes them from the lines for
the customers whose history changed and keeps the rest (see `History`; a test shows the result
equals a run from scratch). The first run, `from_scratch=True`, and changed holiday settings
or category names recompute them for everyone.

Concurrency: a full run holds a session advisory lock (a second full run is skipped, not
queued) and writes under an exclusive transaction lock; a one-customer refresh takes the shared
lock plus a per-customer one. The final write never replaces a row computed after the full
run's snapshot started, so a receipt refreshed mid-run is not undone by older aggregates.

Overlap: the full run sends the statements that read receipt lines (the changed customers'
favourite categories and holiday affinities) to PostgreSQL in pipeline mode and fits, backtests and
ranks in Python meanwhile (`crm.pg.background`); both need only the base tables, and the results
are stored in the final transaction. A nightly run outside a caller's transaction goes further: a
second session finds the changed customers, rebuilds their purchase days and reads every buyer's
while this one aggregates the receipts, then computes, stores and commits their favourites and
holiday affinities while Python fits (see `run.recompute_all`). The receipts aggregate reads only
columns of the covering index `receipt_customer_totals`, and the changed customers are found by
index ranges (`base.dirty_sql`), not by a per-receipt test in that aggregate.

Modules: `session` (parameters, locks, session settings and the temporary tables' records
`BaseTables` and `PredictionTable`), `history` (what a nightly run may reuse), `base` (stage
1: aggregates, creates the `BaseTables`), `predictions` (stage 2: buyers, CLV fit, `am_clv`),
`write` (stage 3: cut points, metrics and favourites), `affinity` (stage 4: holiday affinity)
and `run` (the full run and the one-customer refresh, which chain them).
"""

from .affinity import write_holiday_affinity
from .base import base_sql, build_base, build_purchase_days, foreign_store_ids
from .history import History, history_signature, holiday_keys, plan_history
from .predictions import fetch_buyers_and_days, fetch_days, fit_models, write_predictions
from .run import recompute_all, refresh_one
from .session import (
    CUSTOMER_KEY_BASE,
    FULL_RUN_KEY,
    SESSION_RESET,
    TABLE_KEY,
    TEMP_TABLES,
    BaseTables,
    Params,
    PredictionTable,
    RecomputeBusy,
    _noop,
    drop_temp_tables,
    session_settings,
)
from .write import compute_thresholds, write_favourites, write_metrics

__all__ = [
    "CUSTOMER_KEY_BASE",
    "FULL_RUN_KEY",
    "SESSION_RESET",
    "TABLE_KEY",
    "TEMP_TABLES",
    "BaseTables",
    "History",
    "Params",
    "PredictionTable",
    "RecomputeBusy",
    "_noop",
    "base_sql",
    "build_base",
    "build_purchase_days",
    "compute_thresholds",
    "drop_temp_tables",
    "fetch_buyers_and_days",
    "fetch_days",
    "fit_models",
    "foreign_store_ids",
    "history_signature",
    "holiday_keys",
    "plan_history",
    "recompute_all",
    "refresh_one",
    "session_settings",
    "write_favourites",
    "write_holiday_affinity",
    "write_metrics",
    "write_predictions",
]
