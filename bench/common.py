"""What every benchmark needs: a scratch database beside DATABASE_URL's, and Django on it."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def scratch_name(name: str) -> str:
    """`name`, suffixed with BENCH_SCRATCH_SUFFIX so that two checkouts can bench at once."""
    return name + os.environ.get("BENCH_SCRATCH_SUFFIX", "")


def scratch_urls(name: str) -> tuple[str, str]:
    """(maintenance database URL, scratch database URL) on the server DATABASE_URL names."""
    name = scratch_name(name)
    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("DATABASE_URL must point at a PostgreSQL server (make bench sets it)")
    parts = urlsplit(base)
    return (
        urlunsplit(parts._replace(path="/postgres")),
        urlunsplit(parts._replace(path=f"/{name}")),
    )


def recreate_database(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    name = scratch_name(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    """Point Django at `database_url` and set it up in this process."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the value below which `share` of the samples fall."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]
