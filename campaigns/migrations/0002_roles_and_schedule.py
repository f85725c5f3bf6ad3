from django.db import migrations

from crm.roles import ADMINISTRATOR, MARKETER, create_permissions_now, grant

DAILY_TASK = "campaigns: daily birthday and holiday triggers"
SWEEP_TASK = "campaigns: start scheduled and resume stalled sends"

CAMPAIGN_PERMISSIONS = [
    "campaigns.manage_campaigns",
    "campaigns.view_segment",
    "campaigns.view_campaign",
    "campaigns.view_message",
    "campaigns.view_chaindate",
]


def grant_roles(apps, schema_editor):
    create_permissions_now(apps)
    grant(
        apps,
        ADMINISTRATOR,
        [*CAMPAIGN_PERMISSIONS, "campaigns.add_chaindate", "campaigns.change_chaindate"],
    )
    grant(apps, MARKETER, CAMPAIGN_PERMISSIONS)


def revoke_roles(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="campaigns").delete()


def create_schedule(apps, schema_editor):
    # Rows, not code, so an admin can move or pause them in the admin (DatabaseScheduler).
    from django.conf import settings

    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    # Early in the morning: quiet hours defer each message to its store's morning anyway.
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="7",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name=DAILY_TASK,
        defaults={
            "task": "campaigns.tasks.run_daily_triggers",
            "crontab": crontab,
            "description": "Materialise birthday and holiday messages due today and send them.",
        },
    )
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=SWEEP_TASK,
        defaults={
            "task": "campaigns.tasks.sweep",
            "interval": every_minute,
            "description": "Start campaigns whose time has come and resume interrupted sends.",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[DAILY_TASK, SWEEP_TASK]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("crm", "0003_roles"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [
        migrations.RunPython(grant_roles, revoke_roles),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
