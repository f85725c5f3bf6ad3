"""A real Celery worker is SIGKILLed in the middle of a 3,000-message campaign; another one
finishes it; every message reaches the SMTP server exactly once.

What "exactly once" means here, precisely (see `campaigns.services.delivery`): SMTP has no
idempotency, so the handover to the server and the commit that records it can never be one
atomic step. Each message commits `sending` before its SMTP transaction and `sent` after it.
A worker killed between the two leaves its in-flight message `sending`; when the lease expires
that row becomes `unknown` and is never resent. So the test asserts:

- no message reaches the server twice (no duplicate Message-ID in the sink);
- every message marked `sent` reached the server exactly once;
- every other message reached it at most once, and only `unknown` rows (at most one per worker
  process that was killed, here 2) lack a definite state;
- sent + unknown = all messages: nothing is lost.
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
        start_new_session=True,  # its own process group, so SIGKILL reaches the pool children
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


@pytest.mark.slow
@pytest.mark.timeout(900)  # two real workers on a shared 2-core machine; a safety net only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sigkilled_worker_mid_campaign_every_message_delivered_once(smtp, settings, store_a):
    from tests.factories import UserFactory

    queue = f"campaigns-kill-test-{os.getpid()}"
    settings.CLIENTELE_CAMPAIGN_QUEUE = queue
    settings.CLIENTELE_CAMPAIGN_LEASE_SECONDS = 3
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
        "CLIENTELE_CAMPAIGN_LEASE_SECONDS": "3",
        "CLIENTELE_CAMPAIGN_BATCH": "50",
        "CLIENTELE_QUIET_HOURS": "",
        "CLIENTELE_CAP_MESSAGES": "1000",
        "CLIENTELE_SITE_URL": "https://crm.example.ru",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        first = start_worker(env, log)
        try:
            # on_commit fires at once here (no surrounding transaction): the tasks are queued.
            campaign_start(actor=author, campaign=campaign)
            wait_for(lambda: sent_count(campaign.pk) >= 600, 300, "first sends", first, log.name)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
            killed_at = sent_count(campaign.pk)
            assert killed_at < TOTAL, "the campaign finished before the kill; make it bigger"

            second = start_worker(env, log)
            try:
                # The killed worker's tasks stay unacknowledged in Redis for the broker's
                # visibility timeout; the beat sweeper (called here as beat would) resumes the
                # campaign once the dead claims' leases have expired.
                polls = Counter()

                def done() -> bool:
                    polls["n"] += 1
                    if polls["n"] % 10 == 1:
                        sweep_run()
                    return Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.DONE

                wait_for(done, 600, "the second worker to finish", second, log.name)
            finally:
                os.killpg(second.pid, signal.SIGTERM)
                second.wait(30)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)

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
    assert states["unknown"] <= CONCURRENCY
    sent_ids = {key for key, state in rows.items() if state == "sent"}
    assert all(delivered[key] == 1 for key in sent_ids)
    assert set(delivered) <= set(rows)
    assert len(delivered) >= TOTAL - states["unknown"]
    Path(log.name).unlink()  # kept only when the test fails, for its worker output
