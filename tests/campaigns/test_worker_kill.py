"""A real Celery worker (prefork pool, Redis broker) is SIGKILLed in the middle of a
3,000-message campaign; another one finishes it.

Two kinds of kill, two guarantees (see "Exactly once" in campaigns/README.md):

1. `kill -9 <pid of celery worker>`, what an operator or the OOM killer does: only the main
   process dies. Its pool children record the message each has handed to the SMTP server,
   release the rest of their batch and exit on their own (campaigns.tasks.outliving_parent);
   the second worker sends the rest. Every message reaches the SMTP server exactly once and
   every row ends `sent`. The lease is set far beyond the test's length, so nothing here
   depends on a dead claim expiring.
2. The whole process group SIGKILLed at once, like a power cut of the worker machine: each pool
   child may die between handing its message to the server and recording it. SMTP has no
   idempotency, so that message stays `unknown` (never resent). No message reaches the server
   twice, at most one `unknown` per killed pool process, and sent + unknown = all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from campaigns.models import Campaign, CampaignStatus, Message
from campaigns.services.campaigns import campaign_start
from campaigns.services.sending import sweep_run
from customers.models import Customer
from tests.campaigns.conftest import make_campaign

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 3000
CONCURRENCY = 2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),  # real workers on a shared 2-core machine; a safety net only
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
            env["CLIENTELE_CAMPAIGN_QUEUE"],
            "-c",
            str(CONCURRENCY),
            "--pool",
            "prefork",
            "-l",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"kill-test-{time.monotonic_ns()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, to kill it whole in the second test
    )


def wait_for(predicate, timeout: float, what: str, proc=None, log_path=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"worker exited early: {Path(log_path).read_text()[-3000:]}")
        if time.monotonic() > deadline:
            detail = Path(log_path).read_text()[-3000:] if log_path else ""
            pytest.fail(f"timed out waiting for {what}\n{detail}")
        time.sleep(0.2)


def sent_count(campaign_id: int) -> int:
    return Message.objects.filter(campaign_id=campaign_id, state="sent").count()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # it ended while we looked
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (an exited child nobody has reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def kill_setup(smtp, settings, store_a):
    from tests.factories import UserFactory

    queue = f"campaigns-kill-test-{os.getpid()}-{time.monotonic_ns()}"
    settings.CLIENTELE_CAMPAIGN_QUEUE = queue
    Customer.objects.bulk_create(
        Customer(
            surname=f"Клиент{i}",
            first_name="Тест",
            email=f"k{i}@mail.ru",
            consent_email=True,
            home_store=store_a,
        )
        for i in range(TOTAL)
    )
    author = UserFactory(username="kill-test", is_superuser=True)
    campaign = make_campaign(author, name="kill test")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
        "CLIENTELE_CAMPAIGN_QUEUE": queue,
        "CLIENTELE_CAMPAIGN_BATCH": "50",
        "CLIENTELE_QUIET_HOURS": "",
        "CLIENTELE_CAP_MESSAGES": "1000",
        "CLIENTELE_SITE_URL": "https://crm.example.ru",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    return author, campaign, env


def kill_leftovers(pgid: int) -> None:
    """After a failure: end whatever is left of a killed worker's process group."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the whole group is gone already, as it should be


def finish_with_second_worker(campaign, env, log) -> None:
    second = start_worker(env, log)
    try:
        # The killed worker's own task messages stay unacknowledged in Redis for the broker's
        # visibility timeout; the beat sweeper (called here as beat would) resumes the
        # campaign wherever work is claimable.
        polls = Counter()

        def done() -> bool:
            polls["n"] += 1
            if polls["n"] % 10 == 1:
                sweep_run()
            return Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.DONE

        wait_for(done, 600, "the second worker to finish", second, log.name)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(60)


def test_sigkill_of_the_worker_process_every_message_delivered_exactly_once(
    smtp, settings, kill_setup
):
    author, campaign, env = kill_setup
    # Nothing may depend on a dead claim's lease expiring: it would not, within this test.
    settings.CLIENTELE_CAMPAIGN_LEASE_SECONDS = 3600
    env["CLIENTELE_CAMPAIGN_LEASE_SECONDS"] = "3600"
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        first = start_worker(env, log)
        try:
            # on_commit fires at once here (no surrounding transaction): the tasks are queued.
            campaign_start(actor=author, campaign=campaign)
            wait_for(lambda: sent_count(campaign.pk) >= 600, 300, "first sends", first, log.name)
            pool = children_of(first.pid)
            assert len(pool) == CONCURRENCY
            os.kill(first.pid, signal.SIGKILL)  # the main process only, as `kill -9 <pid>`
            first.wait(10)
            # Each pool child records its in-flight message, releases its batch and exits.
            wait_for(
                lambda: not any(running(pid) for pid in pool),
                120,
                "the orphaned pool processes to exit",
                log_path=log.name,
            )
            # ...and says so (a pool process between two tasks is simply killed by the kernel,
            # as Celery arranges; it had nothing in flight).
            assert "is gone; pool process" in Path(log.name).read_text()
            left = Counter(
                Message.objects.filter(campaign=campaign).values_list("state", flat=True)
            )
            assert left["sending"] == left["unknown"] == left["claimed"] == 0, left
            assert 0 < left["pending"] < TOTAL, "the kill was not in the middle of the campaign"
            assert left["sent"] + left["pending"] == TOTAL
            finish_with_second_worker(campaign, env, log)
        finally:
            kill_leftovers(first.pid)

    delivered = Counter(m["Message-ID"] for m in smtp.messages)
    rows = {
        m.message_id_header: m.state
        for m in Message.objects.filter(campaign=campaign).only("id", "campaign_id", "state")
    }
    assert len(rows) == TOTAL
    assert set(delivered) == set(rows), "every message reached the server"
    assert set(delivered.values()) == {1}, "no message reached the server twice"
    assert Counter(rows.values()) == {"sent": TOTAL}
    Path(log.name).unlink()  # kept only when the test fails, for its worker output


def test_sigkill_of_the_whole_worker_process_group_sends_nothing_twice(smtp, settings, kill_setup):
    author, campaign, env = kill_setup
    # Short, so the rows the dead pool processes held become claimable (or `unknown`) soon.
    settings.CLIENTELE_CAMPAIGN_LEASE_SECONDS = 3
    env["CLIENTELE_CAMPAIGN_LEASE_SECONDS"] = "3"
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        first = start_worker(env, log)
        try:
            campaign_start(actor=author, campaign=campaign)
            wait_for(lambda: sent_count(campaign.pk) >= 600, 300, "first sends", first, log.name)
            os.killpg(first.pid, signal.SIGKILL)  # main process and pool children at once
            first.wait(10)
            assert sent_count(campaign.pk) < TOTAL, "the campaign finished before the kill"
            finish_with_second_worker(campaign, env, log)
        finally:
            kill_leftovers(first.pid)

    delivered = Counter(m["Message-ID"] for m in smtp.messages)
    assert max(delivered.values()) == 1, "a message reached the server twice"
    rows = {
        m.message_id_header: m.state
        for m in Message.objects.filter(campaign=campaign).only("id", "campaign_id", "state")
    }
    assert len(rows) == TOTAL
    states = Counter(rows.values())
    assert set(states) <= {"sent", "unknown"}
    assert states["sent"] + states["unknown"] == TOTAL
    assert states["unknown"] <= CONCURRENCY  # at most the one in flight per pool process
    sent_ids = {key for key, state in rows.items() if state == "sent"}
    assert all(delivered[key] == 1 for key in sent_ids)
    assert set(delivered) <= set(rows)
    # An `unknown` row either reached the server (killed before recording it) or did not
    # (killed before the SMTP transaction ended): never more than once, as asserted above.
    assert len(delivered) >= TOTAL - states["unknown"]
    Path(log.name).unlink()
