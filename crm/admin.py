from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from .api_tokens import user_token_issue
from .audit import audit_record
from .models import AuditAction, AuditEvent, ChainDate, StaffProfile, Store, UserApiToken
from .roles import permission_label, role_label

User = get_user_model()


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    can_delete = False
    filter_horizontal = ["stores"]
    # The morning digest is each user's own choice (My settings), not the admin's.
    fields = ["stores", "export_daily_cap"]
    verbose_name_plural = _("stores and export limit")


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "city", "timezone", "currency", "is_active"]
    list_filter = ["city", "is_active"]
    search_fields = ["code", "name", "city"]


admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    """Users with their stores; every change of roles or stores lands in the audit log."""

    inlines = [StaffProfileInline]
    list_display = ["username", "last_name", "first_name", "roles", "is_active", "last_login"]
    list_filter = ["groups", "is_active", "is_staff", "staff_profile__stores"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("roles"))
    def roles(self, obj) -> str:
        return ", ".join(role_label(g.name) for g in obj.groups.all())

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        # Roles and permissions read in the admin's language (the stored names are English).
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "groups":
            field.label_from_instance = lambda group: role_label(group.name)
        elif db_field.name == "user_permissions":
            field.queryset = field.queryset.select_related("content_type")
            field.label_from_instance = lambda perm: (
                f"{perm.content_type.app_label} | {permission_label(perm)}"
            )
        return field

    def save_model(self, request, obj, form, change):
        before = _flags(User.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        if before is None:
            return
        after = _flags(obj)
        changed = [name for name in after if before[name] != after[name]]
        if changed:
            deactivated = before["active"] and not after["active"]
            audit_record(
                actor=request.user,
                action=AuditAction.USER_DEACTIVATE if deactivated else AuditAction.USER_STATUS,
                obj=obj,
                request=request,
                user=obj.get_username(),
                before={name: before[name] for name in changed},
                after={name: after[name] for name in changed},
            )

    def save_related(self, request, form, formsets, change):
        instance = form.instance
        before = _access_of(instance) if change else {"roles": [], "stores": [], "permissions": []}
        super().save_related(request, form, formsets, change)
        after = _access_of(instance)
        for action, names in (
            (AuditAction.ROLE_CHANGE, ("roles", "stores")),
            (AuditAction.PERMISSION_CHANGE, ("permissions",)),
        ):
            changed = [name for name in names if before[name] != after[name]]
            if changed:
                audit_record(
                    actor=request.user,
                    action=action,
                    obj=instance,
                    request=request,
                    user=instance.get_username(),
                    before={name: before[name] for name in changed},
                    after={name: after[name] for name in changed},
                )


def _flags(user) -> dict[str, bool]:
    return {"active": user.is_active, "staff": user.is_staff, "superuser": user.is_superuser}


def _permission_names(permissions) -> list[str]:
    """`app_label.codename` of each permission; the audit page shows them by name."""
    return sorted(
        f"{app}.{code}"
        for app, code in permissions.values_list("content_type__app_label", "codename")
    )


def _access_of(user) -> dict[str, list[str]]:
    return {
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "stores": _store_codes(user),
        "permissions": _permission_names(user.user_permissions),
    }


admin.site.unregister(Group)


@admin.register(Group)
class AuditedGroupAdmin(GroupAdmin):
    """Roles: a change of what a role may do lands in the audit log, before and after."""

    def save_related(self, request, form, formsets, change):
        group = form.instance
        before = _permission_names(group.permissions) if change else []
        super().save_related(request, form, formsets, change)
        after = _permission_names(group.permissions)
        if before != after:
            audit_record(
                actor=request.user,
                action=AuditAction.PERMISSION_CHANGE,
                obj=group,
                request=request,
                group=group.name,
                before={"permissions": before},
                after={"permissions": after},
            )


def _store_codes(user) -> list[str]:
    profile = StaffProfile.objects.filter(user=user).first()
    return sorted(profile.stores.values_list("code", flat=True)) if profile else []


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is evidence, so nobody edits or deletes it here."""

    list_display = ["at", "actor_name", "action", "object_type", "object_id", "ip_address"]
    list_filter = ["action", "object_type", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor_name", "object_id", "ip_address"]
    date_hierarchy = "at"
    list_select_related = ["actor"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ChainDate)
class ChainDateAdmin(admin.ModelAdmin):
    """The chain's own dates (crm.calendar): holiday campaigns and holiday affinity use them."""

    list_display = ["name", "day", "month", "store"]
    list_filter = ["store"]


@admin.register(UserApiToken)
class UserApiTokenAdmin(admin.ModelAdmin):
    """Issue a person's API token (the key is shown once), see its last use, delete to revoke.

    Issuing is audited; only the key's hash is stored (crm.api_tokens)."""

    list_display = ["user", "name", "prefix", "created_at", "last_used_at"]
    list_filter = [("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "name", "prefix"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    def get_fields(self, request, obj=None):
        return ["user", "name"] if obj is None else ["user", "name", "prefix", *self._stamps]

    _stamps = ["created_at", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["user", "prefix", *self._stamps]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, raw = user_token_issue(
            user=obj.user, name=obj.name, actor=request.user, request=request
        )
        # The admin's own "added" message and log entry name the saved row.
        obj.pk, obj.prefix, obj.created_at = token.pk, token.prefix, token.created_at
        messages.warning(
            request,
            _("The token for %(user)s is %(key)s — copy it now, it will not be shown again.")
            % {"user": obj.user, "key": raw},
        )

    def delete_model(self, request, obj):
        # Deleting is how a token is revoked: the audit log says who ended whose key.
        audit_record(
            actor=request.user,
            action=AuditAction.API_KEY,
            obj=obj,
            request=request,
            event="revoked",
            user=obj.user.get_username(),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            self.delete_model(request, token)
