"""`make run` on a fresh machine: embedded servers, migrations, demo data, web + worker + beat,
a healthy /healthz, and Ctrl-C leaving nothing behind; a second start reuses the data."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.launcher, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    except OSError:
        return 0, {}


def _start(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "crm.launcher", "run"],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait_healthy(process: subprocess.Popen, port: int, log: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-4000:]
        status, body = _health(port)
        if status == 200:
            return body
        time.sleep(1)
    raise AssertionError(f"not healthy in {timeout}s: {body}\n{log.read_text()[-4000:]}")


def _ours(var_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(var_dir) in cmdline:
            found.append(proc)
    return found


def _stop(process: subprocess.Popen, var_dir: Path, log: Path) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(90) == 0, log.read_text()[-4000:]
    time.sleep(0.5)
    left = [p for p in _ours(var_dir) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [" ".join(p.cmdline()) for p in left]


def test_launcher_starts_everything_and_ctrl_c_stops_everything(tmp_path):
    var_dir = tmp_path / "var"
    web, pg, redis = _free_port(), _free_port(), _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME"}
    }
    env.update(
        CLIENTELE_VAR_DIR=str(var_dir),
        CLIENTELE_PORT=str(web),
        CLIENTELE_PG_PORT=str(pg),
        CLIENTELE_REDIS_PORT=str(redis),
        CLIENTELE_DEMO_CUSTOMERS="40",
        WEB_CONCURRENCY="1",
    )
    log = tmp_path / "launcher.log"
    process = _start(env, log)
    try:
        body = _wait_healthy(process, web, log, timeout=180)
        assert body["checks"]["celery"]["workers"], body
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 3  # gunicorn, worker, beat (and their own children)
        # manage.py in "another terminal" reaches the same embedded database.
        other = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from customers.models import Customer; print(Customer.objects.count())",
            ],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert int(other.stdout.strip().splitlines()[-1]) == 40
    finally:
        if process.poll() is None:
            _stop(process, var_dir, log)
    assert not any(c.is_running() for c in children)
    for port in (web, pg, redis):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"

    # A second start reuses the data: no new demo load, the same customers.
    first_log = log.read_text()
    assert first_log.count("first start: loading demo data") == 1
    process = _start(env, log)
    try:
        _wait_healthy(process, web, log, timeout=120)
    finally:
        _stop(process, var_dir, log)
    assert log.read_text().count("first start: loading demo data") == 1
