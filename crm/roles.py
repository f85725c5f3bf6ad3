"""The staff roles of DESIGN.md as Django groups, and the permissions each one holds.

Roles are created by a data migration (`crm/migrations/0002_roles.py`); later apps grant their own
permissions to roles from their own migrations with `grant()`. Nothing re-syncs groups on
deploy, so an admin's edits to a group in the admin are never silently undone.
"""

from collections.abc import Iterable

from django.utils.translation import gettext, gettext_lazy, gettext_noop

ADMINISTRATOR = "Administrator"
MARKETER = "Marketer"
STORE_MANAGER = "Store manager"
SALES_ASSOCIATE = "Sales associate"
ROLES = (ADMINISTRATOR, MARKETER, STORE_MANAGER, SALES_ASSOCIATE)
# Group names stay English in the database (migrations and code look them up by name); people
# read them translated.
gettext_noop("Administrator")
gettext_noop("Marketer")
gettext_noop("Store manager")
gettext_noop("Sales associate")


def role_label(name: str) -> str:
    """A role (group) name in the reader's language; an admin's own group keeps its name."""
    return gettext(name) if name else name


_DEFAULT_ACTIONS = {
    "add": gettext_lazy("Can add %(model)s"),
    "change": gettext_lazy("Can change %(model)s"),
    "delete": gettext_lazy("Can delete %(model)s"),
    "view": gettext_lazy("Can view %(model)s"),
}


def permission_label(permission) -> str:
    """A permission's name in the reader's language.

    Django stores "Can add customer" in English at migrate time; the four default actions are
    rebuilt from the model's translated verbose name, custom permissions are looked up by their
    (English) name among the app's translations.
    """
    action, _, model = permission.codename.partition("_")
    model_class = permission.content_type.model_class()
    if action in _DEFAULT_ACTIONS and model_class and model == permission.content_type.model:
        return str(_DEFAULT_ACTIONS[action]) % {"model": model_class._meta.verbose_name}
    return gettext(permission.name)


_CARD_READ = [
    "customers.view_customer",
    "customers.view_contact",
    "customers.view_consentevent",
    "customers.view_tag",
    "sales.view_receipt",
    "sales.view_return",
    "crm.view_store",
    "sales.view_product",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    ADMINISTRATOR: [
        *_CARD_READ,
        "customers.view_all_customers",
        "customers.view_contact_details",
        "customers.export_customers",
        "customers.add_customer",
        "customers.change_customer",
        "customers.delete_customer",
        "customers.add_contact",
        "customers.change_contact",
        "customers.add_tag",
        "customers.change_tag",
        "customers.add_customfield",
        "customers.change_customfield",
        "customers.view_customfield",
        "customers.add_customfieldcategory",
        "customers.change_customfieldcategory",
        "customers.view_customfieldcategory",
        "customers.add_acquisitionchannel",
        "customers.change_acquisitionchannel",
        "customers.view_acquisitionchannel",
        "crm.add_store",
        "crm.change_store",
        "sales.add_product",
        "sales.change_product",
        "sales.view_category",
        "sales.add_category",
        "sales.change_category",
        "crm.view_auditevent",
        "crm.view_staffprofile",
        "crm.add_staffprofile",
        "crm.change_staffprofile",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
    ],
    MARKETER: [
        *_CARD_READ,
        "customers.view_all_customers",
        "customers.view_customfield",
        "customers.view_customfieldcategory",
        "sales.view_category",
    ],
    STORE_MANAGER: [
        *_CARD_READ,
        "customers.view_store_customers",
        "customers.view_contact_details",
        "customers.add_customer",
        "customers.change_customer",
        "customers.add_contact",
        "customers.change_contact",
    ],
    SALES_ASSOCIATE: [
        "customers.view_customer",
        "customers.view_contact",
        "customers.lookup_customers",
        "customers.add_customer",
        "customers.add_contact",
        "sales.view_receipt",
        "crm.view_store",
    ],
}


def _permissions(apps, names: Iterable[str]):
    Permission = apps.get_model("auth", "Permission")
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = list(
        Permission.objects.filter(
            content_type__app_label__in={app for app, _ in wanted},
            codename__in={code for _, code in wanted},
        ).select_related("content_type")
    )
    perms = [p for p in found if (p.content_type.app_label, p.codename) in wanted]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in perms}
    if missing:
        raise LookupError(f"permissions not found: {sorted('.'.join(m) for m in missing)}")
    return perms


def grant(apps, role: str, names: Iterable[str]) -> None:
    """Give `role` the named permissions (`app_label.codename`), creating the group if needed."""
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=role)
    group.permissions.add(*_permissions(apps, names))


def create_permissions_now(apps) -> None:
    """Make sure the permissions of every migrated app exist inside the running migration.

    Django creates permissions in `post_migrate`, after all migrations; a data migration that
    assigns them must create them first.
    """
    from django.contrib.auth.management import create_permissions

    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, apps=apps)
        config.models_module = None
