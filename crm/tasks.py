"""Queue Celery tasks by name, after the surrounding transaction commits.

Services in a lower layer must not import a higher app's tasks, and a task queued inside a
transaction must not run before the rows it reads are committed. `enqueue` solves both: the
task is named by its dotted Celery name (checked against the registry when it is sent, and by
`tests/crm/test_task_names.py` for every literal name in the code), and it is sent from
`transaction.on_commit`.

A broker that is down when the callback runs is logged (with the task name), not raised: the
rows are committed by then, so failing the request would only make its caller retry work that
is already done; the nightly jobs pick up what a lost message would have done.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)
# Threads of one web process may ask at once; the second must wait for the first's imports to
# finish, or it would find a half-imported tasks module and no task in it.
_imports = threading.Lock()


def registered_task(name: str):
    """The task registered under `name`; KeyError if there is none.

    A web process imports no `tasks` module by itself (Celery autodiscovers them when a worker
    starts), so the first look-up imports every installed app's tasks.
    """
    from crm.celery import app

    if name not in app.tasks:
        with _imports:
            if name not in app.tasks:
                app.loader.import_default_modules()
    return app.tasks[name]


def send_now(name: str, *args: Any, queue: str | None = None, **kwargs: Any) -> None:
    """Send the task `name` at once (honours `task_always_eager`, as `apply_async` does)."""
    task = registered_task(name)
    options = {"queue": queue} if queue else {}
    task.apply_async(args=args, kwargs=kwargs, **options)


def enqueue(name: str, *args: Any, queue: str | None = None, **kwargs: Any) -> None:
    """Send the task `name` with these arguments once the current transaction commits."""

    def send() -> None:
        try:
            send_now(name, *args, queue=queue, **kwargs)
        except KeyError:
            # An unknown name is a programming error: never swallow it.
            raise
        except Exception:
            logger.exception("could not queue task %s", name)

    transaction.on_commit(send)


def beat_daily(apps, *, name: str, task: str, hour: int, minute: int, description: str) -> None:
    """For a data migration: run `task` every day at hour:minute in the chain's time zone.

    Beat runs with the DatabaseScheduler, so a schedule is a row an admin can move or pause;
    `get_or_create`, so a schedule an admin changed is left as it is.
    """
    from django.conf import settings

    crontab, _ = apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
        minute=str(minute),
        hour=str(hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.get_or_create(
        name=name, defaults={"task": task, "crontab": crontab, "description": description}
    )
