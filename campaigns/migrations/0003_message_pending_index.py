from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built concurrently: a deployment with millions of messages keeps sending meanwhile.
    atomic = False

    dependencies = [
        ("campaigns", "0002_roles_and_schedule"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("state", "pending")),
                fields=["campaign", "id"],
                name="message_pending",
            ),
        ),
    ]
