"""The pipeline's two runs: the full recompute and the one-customer refresh, stage by stage
(history plan, base tables, predictions, cut points, writes)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from crm.pg import background

from .. import ranking
from ..models import ClassThresholds, ClvModelFit
from .affinity import affinity_statements, affinity_write_statements, write_holiday_affinity
from .base import (
    ANALYZE_RECEIPTS,
    build_base,
    build_purchase_days,
    changed_statements,
    favourite_statements,
    foreign_store_ids,
)
from .history import history_signature, plan_history
from .predictions import (
    check_models,
    fetch_buyers_and_days,
    fetch_stored_days,
    record_fit,
    write_predictions,
)
from .session import (
    CUSTOMER_KEY_BASE,
    FULL_RUN_KEY,
    SESSION_RESET,
    TABLE_KEY,
    BaseTables,
    Params,
    RecomputeBusy,
    _execute,
    _noop,
    drop_temp_tables,
    session_settings,
)
from .write import (
    compute_thresholds,
    favourite_write_statements,
    write_favourites,
    write_metrics,
)

log = logging.getLogger(__name__)


def recompute_all(
    *,
    as_of: dt.datetime | None = None,
    progress: Callable = _noop,
    from_scratch: bool = False,
) -> tuple[int, ClvModelFit]:
    """The full run: aggregate, fit, rank and write the whole base. Raises RecomputeBusy.

    Every metric of every customer is recomputed from the receipts; favourite categories and
    holiday affinity are recomputed from the lines for the customers whose history changed
    since the previous run (see `History`), or for everyone when `from_scratch`, when there
    is no previous run, or when the holiday settings or category names changed.

    Two server processes share a nightly run's work (on two cores). While this session
    aggregates the receipts (`am_rc`), a second one (`crm.pg.background.second_connection`)
    finds the changed customers, rebuilds their purchase days and fetches every buyer's
    (`fetch_stored_days`, matched to the buyers by id, so this session's COPY reads `am_rc`
    alone), then computes and stores their favourite categories and holiday affinities while
    this process fits the models, and commits before the metrics are written. Those rows are
    facts of the receipts alone, each as true without the metrics as with them, so they are
    committed before the metrics swap rather than in its transaction: if the run fails after
    that commit they stay, and the next run, whose history watermark (`ClassThresholds`, written
    with the metrics) has not moved, recomputes the same customers and more. Refreshes queue
    behind the second session's writes as behind the final transaction (the same advisory lock).
    Inside a caller's transaction (tests) a second session would not see the caller's rows, and
    the first run has no changed customers to split off: both do everything in this session, the
    line-reading statements while Python fits, stored in the final transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [FULL_RUN_KEY])
        if not cursor.fetchone()[0]:
            raise RecomputeBusy
    try:
        for setting in session_settings():
            _execute(setting)
        computed_at = timezone.now()
        params = Params.build(as_of)
        signature = history_signature(params)
        previous = ClassThresholds.objects.filter(pk=1).first()
        history = None if from_scratch else plan_history(params, previous, signature)
        # A nightly run outside any transaction of the caller's hands its changed customers to
        # a second session (see the docstring); otherwise this one does everything. Measured
        # (bench/README.md, session 6): the purchase days, their fetch and the favourites' and
        # affinities' writes leave the run's serial path.
        aside = history is not None and not connection.in_atomic_block
        stored_days = None
        with ExitStack() as second:
            meanwhile = None
            if aside:
                other = second.enter_context(background.second_connection())
                # Sent before this session's first statement: the second one is the longer
                # side of the receipts stage (its purchase days and their fetch).
                head = second.enter_context(ExitStack())
                head.enter_context(
                    background.running(
                        [
                            *((setting, None) for setting in session_settings()),
                            ("BEGIN", None),
                            *changed_statements(params, history),
                        ],
                        using=other,
                    )
                )

                def meanwhile() -> None:
                    nonlocal stored_days, aside_seconds
                    head.close()  # the purchase days rebuilt, in the open transaction
                    stored_days = _changes_aside(params, computed_at, other, second)
                    aside_seconds = time.perf_counter() - base_started

            aside_seconds, base_started = 0.0, time.perf_counter()
            base = build_base(
                params,
                None,
                progress,
                history,
                favourites=False,
                changes=not aside,
                meanwhile=meanwhile,
            )
            if aside:
                # Which side the receipts stage waited for: the aggregate, or the second
                # session's purchase days and their fetch.
                log.info(
                    "receipts stage took %.2fs; the second session read the purchase days after "
                    "%.2fs",
                    time.perf_counter() - base_started,
                    aside_seconds,
                )
            dirty = base if history is not None else None
            progress("model fit", 60)
            started = time.perf_counter()
            # The buyers for the ranking and their purchase days for the models, fetched once.
            buyers, days, complete = fetch_buyers_and_days(params, base, stored_days)
            if not complete:
                # A buyer without stored purchase days (rows removed by hand): rebuild them all
                # rather than misalign the models' arrays with the ranking's.
                log.warning("purchase days incomplete: rebuilding them for every buyer")
                second.close()  # after the second session's commit
                p = {**params.sql(), "cid": None, "foreign_stores": foreign_store_ids()}
                mine = "AND r.store_id <> ALL(%(foreign_stores)s)" if p["foreign_stores"] else ""
                build_purchase_days(p, None, True, mine)
                buyers, days, _complete = fetch_buyers_and_days(params, base)
            previous_fit = ClvModelFit.objects.first()
            # The two processes work at once: PostgreSQL finds the changed customers' favourite
            # categories and holiday affinities (the only statements here that read receipt
            # lines; they are stored with the metrics below), unless the second session does,
            # while Python fits and backtests the models and ranks the buyers, which need
            # nothing more from it.
            # Nothing in the block may use the database (see crm.pg.background).
            statements = [ANALYZE_RECEIPTS]
            if not aside:
                statements += [
                    *favourite_statements(params),
                    *affinity_statements(params, None, dirty),
                ]
            block_started = time.perf_counter()
            with background.running(statements):
                checked = check_models(days, previous_fit, params.settings)
                cuts, scores = ranking.rfm_ranks(buyers)
                python_done = time.perf_counter()
            # Which side the run waited for: a wait here means the statements (or the second
            # session) are the longer side.
            second.close()
            log.info(
                "fit and ranking took %.2fs, then waited %.2fs for the background statements",
                python_done - block_started,
                time.perf_counter() - python_done,
            )
        fit = record_fit(checked)
        log.info("CLV models fitted in %.1fs: %s", time.perf_counter() - started, fit.message)
        progress("predictions", 85)
        predictions = write_predictions(params, base, fit, days, scores, buyers)
        # Without statistics the planner cannot tell that this is one row per buyer; the join
        # key's are all it needs (the other columns' only slow ANALYZE down).
        _execute("ANALYZE am_clv (customer_id)")
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TABLE_KEY])
            thresholds = compute_thresholds(
                params,
                buyers,
                cuts=cuts,
                history_started_at=computed_at,
                history_signature=signature,
            )
            progress("writing", 90)
            if not aside:
                write_favourites(base, computed_at, everyone=history is None)
                write_holiday_affinity(params, None, dirty=dirty, computed=True)
            # Last, and committed at once: the swap locks the table and customers briefly.
            written = write_metrics(
                params, base, predictions, thresholds, computed_at, whole_table=True
            )
        return written, fit
    finally:
        drop_temp_tables()
        _execute(SESSION_RESET)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [FULL_RUN_KEY])


def _changes_aside(
    params: Params, computed_at: dt.datetime, other: BaseDatabaseWrapper, stack: ExitStack
) -> dict:
    """The rest of a nightly run's work on its changed customers in the second session
    `other`, whose transaction has rebuilt their purchase days (`changed_statements`): every
    buyer's stored purchase days fetched (returned, see `fetch_stored_days`); then their
    favourite categories and holiday affinities, computed and stored, and the commit, left
    running in the server (`stack` waits for them when it closes)."""
    stored = fetch_stored_days(params, other)
    dirty = BaseTables()
    rest = [
        *favourite_statements(params),
        *affinity_statements(params, None, dirty),
        # The writes queue one-customer refreshes, as the final transaction does.
        ("SELECT pg_advisory_xact_lock(%s)", [TABLE_KEY]),
        *favourite_write_statements(computed_at),
        *affinity_write_statements(params, None, dirty),
        ("COMMIT", None),
    ]
    stack.enter_context(background.running(rest, using=other))
    return stored


def refresh_one(*, customer_id: int, as_of: dt.datetime | None = None) -> int:
    """The same pipeline for one customer, ranked against the last full run's cut points."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [TABLE_KEY])
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CUSTOMER_KEY_BASE + customer_id])
        computed_at = timezone.now()
        params = Params.build(as_of)
        # On an error the rollback drops the temporary tables with everything else.
        base = build_base(params, customer_id, _noop)
        predictions = write_predictions(params, base, ClvModelFit.objects.first())
        thresholds = ClassThresholds.objects.filter(pk=1).first()
        written = write_metrics(
            params, base, predictions, thresholds, computed_at, customer_id=customer_id
        )
        write_favourites(base, computed_at, customer_id=customer_id)
        write_holiday_affinity(params, customer_id)
        drop_temp_tables()
        return written
