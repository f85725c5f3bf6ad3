from django.db import migrations

from crm.roles import ADMINISTRATOR, SALES_ASSOCIATE, STORE_MANAGER, create_permissions_now, grant
from customers.privacy import defaults

ERASURE_TASK = "customers: erase personal data after the withdrawal grace period"


def forwards(apps, schema_editor):
    create_permissions_now(apps)
    grant(
        apps,
        ADMINISTRATOR,
        [
            "customers.erase_customer",
            "customers.answer_subject_access",
            "customers.view_processingconsentdocument",
            "customers.add_processingconsentdocument",
            "customers.change_processingconsentdocument",
            "customers.view_processingconsent",
            "customers.add_processingconsent",
            "customers.view_subjectaccessrequest",
            "customers.add_subjectaccessrequest",
        ],
    )
    for role in (STORE_MANAGER, SALES_ASSOCIATE):
        grant(apps, role, ["customers.add_processingconsent", "customers.view_processingconsent"])
    Document = apps.get_model("customers", "ProcessingConsentDocument")
    Document.objects.get_or_create(
        version=defaults.DEFAULT_VERSION,
        defaults={
            "title": defaults.DEFAULT_TITLE,
            "text": defaults.DEFAULT_TEXT,
            "language": "ru",
            "effective_from": defaults.DEFAULT_EFFECTIVE_FROM,
        },
    )
    from crm.tasks import beat_daily

    beat_daily(
        apps,
        name=ERASURE_TASK,
        task="customers.tasks.erase_due",
        hour=2,
        minute=15,
        description="Erase customers whose withdrawal grace period has passed.",
    )


def backwards(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=ERASURE_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_i19_processing_consent"),
        ("crm", "0003_roles"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
