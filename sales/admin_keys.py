"""Admin for POS API keys: issue (the key is shown once), see last use, revoke.

Imported from `sales/admin.py` (the lead's), which Django's admin autodiscovery loads.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from .apikeys import key_hash, pos_key_revoke
from .models import PosApiKey


@admin.register(PosApiKey)
class PosApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "store", "kind", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["store", "kind", "revoked_at"]
    search_fields = ["name", "prefix", "store__code"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        return (
            ["store", "name", "kind"]
            if obj is None
            else [*self.readonly_fields[:1], "store", "name", "kind", *self.readonly_fields[1:]]
        )

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["store", "kind", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        import secrets

        from crm.audit import audit_record
        from crm.models import AuditAction

        from .apikeys import KEY_PREFIX, PREFIX_LENGTH

        raw = KEY_PREFIX + secrets.token_urlsafe(32)
        obj.prefix = raw[:PREFIX_LENGTH]
        obj.key_hash = key_hash(raw)
        obj.created_by = request.user
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action=AuditAction.API_KEY,
            obj=obj,
            request=request,
            event="issued",
            store=obj.store.code,
            kind=obj.kind,
        )
        messages.warning(
            request,
            _("The key for %(name)s is %(key)s — copy it now, it will not be shown again.")
            % {"name": obj.name, "key": raw},
        )

    @admin.action(description=_("Revoke selected keys"))
    def revoke(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            pos_key_revoke(key=key, actor=request.user)
        self.message_user(request, _("Keys revoked."))

    def has_delete_permission(self, request, obj=None):
        # Revoked, never deleted: the audit log keeps pointing at them.
        return False
