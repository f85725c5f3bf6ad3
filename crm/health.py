"""`/healthz`: is the database, Redis and at least one Celery worker answering?

Host names and error texts only for Administrators signed in; anyone else gets the verdict.
"""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .celery import app as celery_app


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message says which
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True}


def _check_redis() -> dict:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
    except redis.RedisError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True}


def _check_workers() -> dict:
    try:
        replies = celery_app.control.ping(timeout=1.0) or []
    except Exception as exc:  # the broker being down surfaces as kombu/redis errors
        return {"ok": False, "workers": [], "error": f"{type(exc).__name__}: {exc}"[:300]}
    workers = sorted(name for reply in replies for name in reply)
    return {"ok": bool(workers), "workers": workers}


def _may_see_details(user) -> bool:
    from .admin_site import can_use_admin

    return can_use_admin(user)


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _check_database(), "redis": _check_redis()}
    checks["celery"] = (
        _check_workers() if checks["redis"]["ok"] else {"ok": False, "error": "no broker"}
    )
    healthy = all(check["ok"] for check in checks.values())
    if not _may_see_details(request.user):
        # Worker names are host names and driver errors name servers and ports: a map of the
        # installation for whoever asks. Anonymous monitors get the verdict and the count.
        checks = {
            name: {"ok": check["ok"]}
            | ({"workers": len(check.get("workers", []))} if name == "celery" else {})
            for name, check in checks.items()
        }
    return JsonResponse(
        {"status": "ok" if healthy else "fail", "checks": checks}, status=200 if healthy else 503
    )
