"""Every task named in a call to `enqueue`/`send_now` is a registered Celery task.

Tasks are queued by name so that a lower layer never imports a higher app's tasks; a typo in
such a name would fail only when the message is sent, so this test reads every literal name
in the code and looks it up in the worker's registry.
"""

import ast
from pathlib import Path

import pytest
from django.db import transaction

from crm.celery import app
from crm.tasks import enqueue, registered_task

ROOT = Path(__file__).resolve().parents[2]
APPS = ("crm", "customers", "sales", "loyalty", "analytics", "campaigns", "demo")


def _named_tasks() -> list[tuple[str, str]]:
    found = []
    for app_dir in APPS:
        for path in (ROOT / app_dir).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                first = node.args[0]
                if called in {"enqueue", "send_now"} and isinstance(first, ast.Constant):
                    found.append((str(path.relative_to(ROOT)), first.value))
    return found


def test_every_enqueued_name_is_a_registered_task():
    names = _named_tasks()
    assert names, "no enqueue() call found: the scan itself is broken"
    unknown = []
    for where, name in names:
        try:
            registered_task(name)
        except KeyError:
            unknown.append((where, name))
    assert unknown == []


@pytest.mark.django_db(transaction=True)
def test_enqueue_waits_for_commit_and_refuses_unknown_names():
    sent = []
    app.conf.task_always_eager = True
    try:

        @app.task(name="tests.crm.record")
        def record(value):
            sent.append(value)

        with transaction.atomic():
            enqueue("tests.crm.record", 1)
            assert sent == []
        assert sent == [1]

        with pytest.raises(KeyError), transaction.atomic():
            enqueue("tests.crm.no_such_task")
    finally:
        app.conf.task_always_eager = False


@pytest.mark.django_db
def test_every_beat_row_names_a_registered_task():
    """The beat schedule is data (django_celery_beat rows made by migrations): a row naming a
    task the worker does not have would fail silently every night."""
    from django_celery_beat.models import PeriodicTask

    rows = list(PeriodicTask.objects.values_list("name", "task"))
    assert "customers.tasks.prune_name_tokens" in {task for _, task in rows}, rows
    unknown = []
    for name, task in rows:
        try:
            registered_task(task)
        except KeyError:
            unknown.append((name, task))
    assert unknown == []
