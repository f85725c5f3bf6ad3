"""Thin Celery tasks: they take ids and call the campaign services.

Two pieces of worker plumbing live here because only the send task needs them:

- `worker_init` loads the URLconf in the worker's main process (every message carries an
  absolute unsubscribe link, and reversing it the first time imports every view), so the pool
  children inherit it instead of each paying about a second of CPU on its first message.
- `outliving_parent`: Celery's prefork children ask the kernel to SIGKILL them when the
  worker's main process dies (PR_SET_PDEATHSIG). For a send that would cut the one step that
  must never be cut: between handing a message to the SMTP server and recording it `sent`,
  leaving it `unknown`. While `send_campaign` runs, the child clears that death signal and asks
  between messages whether its parent is still there; when it is gone (an operator's
  `kill -9` of the worker), the child records its in-flight message, releases the rest of its
  batch, queues the continuation and exits. See "Exactly once" in campaigns/README.md.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from celery import shared_task
from celery.signals import worker_init
from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)


@worker_init.connect
def load_urlconf(**kwargs) -> None:
    from campaigns.services.render import warm_up

    warm_up()


def _pdeathsig() -> int:
    from billiard.util import get_pdeathsig

    try:
        return get_pdeathsig()
    except OSError:
        return 0  # not Linux: no death signal was set, nothing to suspend


@contextmanager
def outliving_parent() -> Iterator[Callable[[], bool]]:
    """Yield `parent_gone()`; in a prefork child, survive the parent's death meanwhile."""
    from billiard.util import set_pdeathsig

    if _pdeathsig() != signal.SIGKILL:
        yield lambda: False  # not a prefork pool child (eager, solo, a test): nothing to do
        return
    parent = os.getppid()
    set_pdeathsig(0)
    try:
        yield lambda: os.getppid() != parent
    finally:
        # Back to Celery's default for whatever task runs next. A parent that died before this
        # line sends no signal any more: the caller asks `parent_gone()` once more.
        set_pdeathsig(signal.SIGKILL)


def _leave_as_orphan() -> None:
    """End this pool child: its parent is gone, nobody will give it work or read its result."""
    from django.db import connections

    log.warning("worker main process %s is gone; pool process %s exits", os.getppid(), os.getpid())
    connections.close_all()
    logging.shutdown()
    os._exit(0)


@shared_task(acks_late=True, ignore_result=True)
def send_campaign(campaign_id: int) -> None:
    """Send for a while, then hand over to a fresh task while work is left (rerunnable)."""
    from campaigns.services import delivery

    worker = delivery.worker_id(send_campaign.request.id or "")
    with outliving_parent() as parent_gone:
        more = delivery.send_some(campaign_id=campaign_id, worker=worker, stop=parent_gone)
    if more:
        send_campaign.apply_async(args=[campaign_id], queue=settings.CLIENTELE_CAMPAIGN_QUEUE)
    if parent_gone():
        _leave_as_orphan()


@shared_task(acks_late=True, ignore_result=True)
def run_daily_triggers() -> None:
    """Create today's birthday and holiday messages and queue their sending."""
    from campaigns.services.sending import daily_triggers_run

    daily_triggers_run(today=timezone.localdate())


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> None:
    """Start due scheduled campaigns and resume sends that stalled or have deferred work due."""
    from campaigns.services.sending import sweep_run

    sweep_run()
