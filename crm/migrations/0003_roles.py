from django.db import migrations

from crm.roles import ROLE_PERMISSIONS, create_permissions_now, grant


def _as_of_this_migration(permissions):
    # `Store` lived in sales until crm/0008 moved it (renaming its content type), so here its
    # permissions still carry the sales label.
    store = {"crm.view_store", "crm.add_store", "crm.change_store", "crm.delete_store"}
    return [p.replace("crm.", "sales.", 1) if p in store else p for p in permissions]


def create_roles(apps, schema_editor):
    create_permissions_now(apps)
    for role, permissions in ROLE_PERMISSIONS.items():
        grant(apps, role, _as_of_this_migration(permissions))


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0002_initial"),
        ("customers", "0002_initial"),
        ("sales", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
