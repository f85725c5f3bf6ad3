"""The name dictionary pruned nightly (a beat row, so an admin can move or pause it).

Cards' inserts and updates add their folded names to `customers_nametoken`; nothing took a
name out once no card carried it (after a rename, a merge or a revert), except the erasure of
one person. The prune keeps the dictionary to the names of the base.
"""

from django.db import migrations

PRUNE_TASK = "Search dictionary: drop names no card carries"


def create_schedule(apps, schema_editor):
    from django.conf import settings

    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="40",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name=PRUNE_TASK,
        defaults={
            "task": "customers.tasks.prune_name_tokens",
            "crontab": crontab,
            "description": "Remove from the name search dictionary the names no card carries.",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=PRUNE_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0012_h17h_name_tokens_on_rename"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
