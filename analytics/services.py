"""Writes of analytics: the full recompute, the one-customer refresh, and requesting a run.

The SQL lives in `analytics.metrics`; these functions add the run record, progress and locking
rules the rest of the project relies on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db import transaction
from django.utils import timezone

from crm.tasks import enqueue

from . import metrics
from .models import AnalyticsSettings, RecomputeRun, RunStatus

log = logging.getLogger(__name__)


def customer_metrics_refresh(*, customer_id: int, as_of: dt.datetime | None = None) -> None:
    """Recompute one customer's metrics after a receipt or return, ranked like the last full run.

    On an install that has never run (or queued) a full recompute, the first receipts also
    queue one: classes and the model need the whole base, and the dashboard must not stay
    blank until the first night.
    """
    metrics.refresh_one(customer_id=customer_id, as_of=as_of)
    if not RecomputeRun.objects.exists():
        recompute_request()


@transaction.atomic
def recompute_request() -> RecomputeRun:
    """Queue a full recompute (from the dashboard or after a settings change) and return its run."""
    run = RecomputeRun.objects.create()
    enqueue("analytics.tasks.recompute_all_metrics", run_id=run.pk)
    return run


@transaction.atomic
def settings_save(conf: AnalyticsSettings) -> AnalyticsSettings:
    """Save the analytics settings and queue a full recompute.

    Every threshold changes who is in which class, so the whole base is re-ranked; the task is
    sent after the commit, so it reads the new values.
    """
    conf.save()
    recompute_request()
    return conf


def metrics_recompute_all(
    *, run_id: int | None = None, as_of: dt.datetime | None = None, from_scratch: bool = False
) -> RecomputeRun:
    """Recompute every customer's metrics, refit the CLV models and record progress on the run.

    Not one transaction on purpose: the run's progress must be visible while it works. The
    metrics themselves are written in one transaction at the end (see `analytics.metrics`).
    """
    run = RecomputeRun.objects.filter(pk=run_id).first() if run_id else None
    if run is None:
        run = RecomputeRun.objects.create()
    run.status, run.started_at = RunStatus.RUNNING, timezone.now()
    run.save(update_fields=["status", "started_at"])
    started = time.perf_counter()

    marks = [time.perf_counter()]

    def progress(step: str, percent: int) -> None:
        now = time.perf_counter()
        if run.step:
            log.info("recompute %s: %s took %.2fs", run.pk, run.step, now - marks[-1])
        marks.append(now)
        run.step, run.progress = step, percent
        run.save(update_fields=["step", "progress"])

    try:
        written, fit = metrics.recompute_all(
            as_of=as_of, progress=progress, from_scratch=from_scratch
        )
    except metrics.RecomputeBusy:
        run.status, run.finished_at = RunStatus.SKIPPED, timezone.now()
        run.save(update_fields=["status", "finished_at"])
        log.info("full recompute skipped: another one is running")
        return run
    except Exception as error:
        run.status, run.finished_at, run.error = RunStatus.FAILED, timezone.now(), repr(error)
        run.save(update_fields=["status", "finished_at", "error"])
        raise
    log.info("recompute %s: %s took %.2fs", run.pk, run.step, time.perf_counter() - marks[-1])
    run.status, run.progress, run.step = RunStatus.DONE, 100, ""
    run.customers, run.finished_at = written, timezone.now()
    run.seconds = time.perf_counter() - started
    run.save(update_fields=["status", "progress", "step", "customers", "finished_at", "seconds"])
    return run
