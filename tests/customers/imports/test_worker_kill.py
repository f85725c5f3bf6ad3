"""A real Celery worker (prefork pool, Redis broker) is SIGKILLed in the middle of an import;
the sweeper hands the job to a second worker, which finishes it with nothing doubled.

Each batch commits its cards, its report rows and the cursor in one transaction, so the
batch in flight at the kill is rolled back by PostgreSQL and done again by the second worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection

from crm.models import AuditAction, AuditEvent
from customers.imports.models import ImportJob, ImportRow, ImportStatus
from customers.imports.services import import_start
from customers.imports.tasks import import_resume_stale_task
from customers.models import Customer, CustomerPhone

from .conftest import make_csv, upload

ROOT = Path(__file__).resolve().parents[3]
TOTAL = 20000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def start_worker(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "worker",
            "-Q",
            env["CLIENTELE_IMPORT_QUEUE"],
            "-c",
            "1",
            "--pool",
            "prefork",
            "-l",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"import-kill-{time.monotonic_ns()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(predicate, timeout: float, what: str, log_path: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{Path(log_path).read_text()[-3000:]}")
        time.sleep(0.05)


def test_worker_killed_mid_import_and_resumed_nothing_doubled(admin_user, settings, tmp_path):
    queue = f"imports-kill-test-{os.getpid()}-{time.monotonic_ns()}"
    settings.CLIENTELE_IMPORT_QUEUE = queue
    settings.CLIENTELE_IMPORT_LEASE_SECONDS = 2
    settings.MEDIA_ROOT = str(tmp_path / "media")
    rows = [["Фамилия", "Имя", "Телефон", "Email"]] + [
        [f"Клиент{i}", "Тест", f"+7916{5000000 + i:07d}", f"c{i}@example.ru"] for i in range(TOTAL)
    ]
    job = upload(admin_user, "big.csv", make_csv(rows, encoding="cp1251"))
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CLIENTELE_VAR_DIR": str(tmp_path),
        "CLIENTELE_IMPORT_QUEUE": queue,
        "CLIENTELE_IMPORT_BATCH": "100",
        "CLIENTELE_IMPORT_LEASE_SECONDS": "2",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }

    def processed() -> int:
        return ImportJob.objects.get(pk=job.pk).processed_rows

    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        first = start_worker(env, log)
        try:
            import_start(actor=admin_user, job=job, dry_run=False)  # queued at commit
            wait_for(lambda: processed() >= 2000, 300, "the first batches", log.name)
            os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child at once
            first.wait(10)
        finally:
            try:
                os.killpg(first.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # already gone, as it should be
        at_kill = ImportJob.objects.get(pk=job.pk)
        assert at_kill.status == ImportStatus.RUNNING
        assert 0 < at_kill.processed_rows < TOTAL, "the kill was not in the middle"
        # What is committed is exactly the batches counted by the cursor.
        assert Customer.objects.count() == at_kill.processed_rows
        assert ImportRow.objects.filter(job=job).count() == at_kill.processed_rows

        second = start_worker(env, log)
        try:
            time.sleep(2.5)  # the dead worker's lease runs out
            assert import_resume_stale_task() == [job.pk]
            wait_for(
                lambda: ImportJob.objects.get(pk=job.pk).status == ImportStatus.DONE,
                300,
                "the second worker to finish",
                log.name,
            )
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(60)

    job.refresh_from_db()
    assert job.processed_rows == TOTAL
    assert job.counts == {"created": TOTAL}
    assert Customer.objects.count() == TOTAL
    assert CustomerPhone.objects.count() == TOTAL
    assert ImportRow.objects.filter(job=job, phase="run").count() == TOTAL
    assert AuditEvent.objects.filter(action=AuditAction.CUSTOMER_CREATE).count() == TOTAL
    assert AuditEvent.objects.filter(action=AuditAction.IMPORT).count() == 1
    Path(log.name).unlink()
