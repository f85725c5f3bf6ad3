"""Writing the audit log. Reads are in the admin and the audit page."""

from __future__ import annotations

from typing import Any

from django.db import models

from .models import AuditAction, AuditEvent


def client_ip(request) -> str | None:
    if request is None:
        return None
    # Only REMOTE_ADDR: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it,
    # and gunicorn behind nginx passes the real address via --forwarded-allow-ips.
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    actor,
    action: AuditAction | str,
    obj: models.Model | None = None,
    request=None,
    actor_name: str = "",
    **details: Any,
) -> AuditEvent:
    """Append one audit event; `details` must be JSON-serialisable (before/after, filters...)."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_name=actor_name or (user.get_username() if user else ""),
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        ip_address=client_ip(request),
        details=details,
    )
