"""The Django admin is for Administrators: a staff flag alone opens nothing.

Installed in place of `django.contrib.admin` (see INSTALLED_APPS), so every `admin.site.register`
in the apps lands on this site. Inside, each model admin of customer rows still starts from
`customers.access` (visibility and masking), as the app's pages do: an Administrator whose contact
right was withdrawn sees masked phones here too.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _

ADMIN_PERMISSION = "crm.use_admin"


def can_use_admin(user) -> bool:
    """Active staff holding the admin right (Administrators by role, or superusers)."""
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(ADMIN_PERMISSION)
    )


class ClienteleAdminSite(admin.AdminSite):
    site_header = _("Clientele administration")
    site_title = _("Clientele administration")

    def has_permission(self, request) -> bool:
        return can_use_admin(request.user)


class ClienteleAdminConfig(AdminConfig):
    default_site = "crm.admin_site.ClienteleAdminSite"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by services only (with their audit: ledgers, merges, imports): the admin
    just reads them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
