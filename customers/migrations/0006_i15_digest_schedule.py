"""The beat schedule of the morning digest (a row, so an admin can move or pause it)."""

from django.db import migrations

DIGEST_TASK = "Morning digest"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_15, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=DIGEST_TASK,
        defaults={
            "task": "customers.tasks.send_morning_digests",
            "interval": every_15,
            "description": "Email each opted-in user their morning digest once their day starts.",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=DIGEST_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0005_i15_saved_filters"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
