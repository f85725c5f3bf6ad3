from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from .audit import audit_record
from .models import AuditAction, AuditEvent, StaffProfile
from .roles import permission_label, role_label

User = get_user_model()


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    can_delete = False
    filter_horizontal = ["stores"]
    # The morning digest is each user's own choice (My settings), not the admin's.
    fields = ["stores", "export_daily_cap"]
    verbose_name_plural = _("stores and export limit")


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

    def save_related(self, request, form, formsets, change):
        instance = form.instance
        before_roles = sorted(instance.groups.values_list("name", flat=True)) if change else []
        before_stores = _store_codes(instance) if change else []
        before_perms = _permission_codes(instance) if change else []
        super().save_related(request, form, formsets, change)
        after_roles = sorted(instance.groups.values_list("name", flat=True))
        after_stores = _store_codes(instance)
        after_perms = _permission_codes(instance)
        # A permission granted to one person (export, say) is as much a change of access as a
        # role, so it is audited the same way.
        if (before_roles, before_stores, before_perms) != (after_roles, after_stores, after_perms):
            before = {"roles": before_roles, "stores": before_stores}
            after = {"roles": after_roles, "stores": after_stores}
            if before_perms != after_perms:
                before["permissions"], after["permissions"] = before_perms, after_perms
            audit_record(
                actor=request.user,
                action=AuditAction.ROLE_CHANGE,
                obj=instance,
                request=request,
                user=instance.get_username(),
                before=before,
                after=after,
            )


def _permission_codes(user) -> list[str]:
    return sorted(
        f"{app}.{code}"
        for app, code in user.user_permissions.values_list("content_type__app_label", "codename")
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
