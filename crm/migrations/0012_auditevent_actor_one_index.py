import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Only the index goes: Django's AlterField would also drop and re-add the foreign key, which
# re-checks every row of the audit log (a long lock on a big table) for nothing.
DROP = "DROP INDEX IF EXISTS crm_auditevent_actor_id_1704b900"
CREATE = "CREATE INDEX IF NOT EXISTS crm_auditevent_actor_id_1704b900 ON crm_auditevent (actor_id)"


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0011_audit_action_unpatterned"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="audit_events",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[migrations.RunSQL(DROP, CREATE)],
        ),
    ]
