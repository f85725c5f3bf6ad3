"""Settings an admin edits in the Django admin are audited: who, from where, before and after."""

from __future__ import annotations

from typing import Any

from .audit import audit_record
from .models import AuditAction


def audit_value(value: Any) -> Any:
    """A field value as JSON the audit page can show (decimals and dates as text)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple):
        return [audit_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): audit_value(v) for k, v in value.items()}
    if hasattr(value, "pk"):
        return str(value)
    return str(value)


class SettingsAuditMixin:
    """For a ModelAdmin of settings rows: one SETTINGS_CHANGE event per save that changed
    anything, with the changed fields before and after."""

    def save_model(self, request, obj, form, change):
        fields = [name for name in form.changed_data if name in form.fields]
        old = type(obj).objects.filter(pk=obj.pk).first() if change and obj.pk else None
        before = {name: audit_value(getattr(old, name, None)) for name in fields} if old else {}
        super().save_model(request, obj, form, change)
        after = {name: audit_value(getattr(obj, name, None)) for name in fields}
        if old is not None:
            # A form may call a field changed that comes back the same (JSON re-serialised).
            fields = [name for name in fields if before[name] != after[name]]
            before = {name: before[name] for name in fields}
            after = {name: after[name] for name in fields}
        if fields:
            audit_record(
                actor=request.user,
                action=AuditAction.SETTINGS_CHANGE,
                obj=obj,
                request=request,
                before=before,
                after=after,
            )
