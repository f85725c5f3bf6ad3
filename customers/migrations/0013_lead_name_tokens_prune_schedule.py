"""The name dictionary pruned nightly (a beat row, so an admin can move or pause it).

Cards' inserts and updates add their folded names to `customers_nametoken`; nothing took a
name out once no card carried it (after a rename, a merge or a revert), except the erasure of
one person. The prune keeps the dictionary to the names of the base.
"""

from django.db import migrations

PRUNE_TASK = "Search dictionary: drop names no card carries"


def create_schedule(apps, schema_editor):
    from crm.tasks import beat_daily

    beat_daily(
        apps,
        name=PRUNE_TASK,
        task="customers.tasks.prune_name_tokens",
        hour=3,
        minute=40,
        description="Remove from the name search dictionary the names no card carries.",
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=PRUNE_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0012_h17h_name_tokens_on_rename"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
