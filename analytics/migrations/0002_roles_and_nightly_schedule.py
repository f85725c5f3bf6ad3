from django.db import migrations

from crm.roles import ADMINISTRATOR, MARKETER, STORE_MANAGER, create_permissions_now, grant

TASK_NAME = "analytics: nightly metrics recompute"

GRANTS = {
    ADMINISTRATOR: [
        "analytics.view_dashboard",
        "analytics.view_customermetrics",
        "analytics.view_holidayaffinity",
        "analytics.view_analyticssettings",
        "analytics.change_analyticssettings",
        "analytics.view_clvmodelfit",
        "analytics.view_recomputerun",
    ],
    MARKETER: [
        "analytics.view_dashboard",
        "analytics.view_customermetrics",
        "analytics.view_holidayaffinity",
    ],
    STORE_MANAGER: [
        "analytics.view_dashboard",
        "analytics.view_customermetrics",
        "analytics.view_holidayaffinity",
    ],
}


def grant_roles(apps, schema_editor):
    create_permissions_now(apps)
    for role, permissions in GRANTS.items():
        grant(apps, role, permissions)


def revoke_roles(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="analytics").delete()


def create_schedule(apps, schema_editor):
    from crm.tasks import beat_daily

    beat_daily(
        apps,
        name=TASK_NAME,
        task="analytics.tasks.recompute_all_metrics",
        hour=3,
        minute=30,
        description="Recompute every customer's metrics and refit the CLV models.",
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("crm", "0003_roles"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [
        migrations.RunPython(grant_roles, revoke_roles),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
