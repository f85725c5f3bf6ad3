from django.db import migrations

from crm.roles import ADMINISTRATOR, STORE_MANAGER, create_permissions_now, grant

FINDER = "customers: nightly duplicate finder"
SWEEPER = "customers: resume imports whose worker stopped"

GRANTS = {
    ADMINISTRATOR: [
        "customers.import_customers",
        "customers.view_importjob",
        "customers.view_importmapping",
        "customers.view_duplicatepair",
        "customers.change_duplicatepair",
        "customers.view_customermerge",
        "customers.view_sourcepriority",
        "customers.add_sourcepriority",
        "customers.change_sourcepriority",
        "customers.delete_sourcepriority",
    ],
    # Managers see and merge duplicates within their scope; importing is granted per person.
    STORE_MANAGER: ["customers.view_duplicatepair", "customers.change_duplicatepair"],
}
DEFAULT_PRIORITY = ("pos", "import", "api", "web", "admin", "unsubscribe", "demo")


def forwards(apps, schema_editor):
    create_permissions_now(apps)
    for role, permissions in GRANTS.items():
        grant(apps, role, permissions)
    SourcePriority = apps.get_model("customers", "SourcePriority")
    for rank, source in enumerate(DEFAULT_PRIORITY, start=1):
        SourcePriority.objects.get_or_create(source=source, defaults={"rank": rank})
    from django.conf import settings

    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="2",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name=FINDER,
        defaults={"task": "customers.find_duplicates", "crontab": nightly},
    )
    minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=SWEEPER,
        defaults={"task": "customers.import_resume_stale", "interval": minute},
    )


def backwards(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[FINDER, SWEEPER]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_i17_import_merge"),
        ("crm", "0005_i17_audit_actions"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
