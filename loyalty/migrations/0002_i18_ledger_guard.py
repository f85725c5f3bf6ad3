"""The ledger's guarantees in the database, the default programme, role permissions, schedule.

A statement-level trigger adds each statement's new (or removed) rows to their accounts'
sums, so `available`, `pending` and `debt` always equal the sums of the rows, whoever writes;
the accounts' CHECK then refuses any statement that would take one below zero. A row trigger
forbids changing what a row says (who did it may still be nulled when a user is deleted).
"""

from decimal import Decimal

from django.db import migrations

from crm.roles import ADMINISTRATOR, MARKETER, STORE_MANAGER, create_permissions_now, grant

SUMS = """
CREATE FUNCTION loyalty_entry_sums() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE loyalty_account a
       SET available = a.available + s.av, pending = a.pending + s.pe, debt = a.debt + s.de
      FROM (SELECT account_id, sum(available_delta) av, sum(pending_delta) pe,
                   sum(debt_delta) de FROM new_rows GROUP BY account_id) s
     WHERE a.id = s.account_id;
  ELSE
    UPDATE loyalty_account a
       SET available = a.available - s.av, pending = a.pending - s.pe, debt = a.debt - s.de
      FROM (SELECT account_id, sum(available_delta) av, sum(pending_delta) pe,
                   sum(debt_delta) de FROM old_rows GROUP BY account_id) s
     WHERE a.id = s.account_id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER loyalty_entry_sums_ins AFTER INSERT ON loyalty_entry
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION loyalty_entry_sums();
CREATE TRIGGER loyalty_entry_sums_del AFTER DELETE ON loyalty_entry
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION loyalty_entry_sums();

CREATE FUNCTION loyalty_entry_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.account_id, NEW.kind, NEW.available_delta, NEW.pending_delta, NEW.debt_delta, NEW.at,
      NEW.receipt_id, NEW.return_doc_id, NEW.source_id, NEW.activates_at, NEW.expires_at,
      NEW.bonus_key, NEW.reason)
     IS DISTINCT FROM
     (OLD.account_id, OLD.kind, OLD.available_delta, OLD.pending_delta, OLD.debt_delta, OLD.at,
      OLD.receipt_id, OLD.return_doc_id, OLD.source_id, OLD.activates_at, OLD.expires_at,
      OLD.bonus_key, OLD.reason) THEN
    RAISE EXCEPTION 'the points ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER loyalty_entry_frozen BEFORE UPDATE ON loyalty_entry
  FOR EACH ROW EXECUTE FUNCTION loyalty_entry_frozen();

-- The sums are the trigger's alone: a direct write of them is refused.
CREATE FUNCTION loyalty_account_sums_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_trigger_depth() < 2 AND (NEW.available, NEW.pending, NEW.debt)
     IS DISTINCT FROM (OLD.available, OLD.pending, OLD.debt) THEN
    RAISE EXCEPTION 'points balances change only through the ledger'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER loyalty_account_sums_guard BEFORE UPDATE ON loyalty_account
  FOR EACH ROW EXECUTE FUNCTION loyalty_account_sums_guard();
"""

UNSUMS = """
DROP TRIGGER loyalty_account_sums_guard ON loyalty_account;
DROP FUNCTION loyalty_account_sums_guard();
DROP TRIGGER loyalty_entry_frozen ON loyalty_entry;
DROP FUNCTION loyalty_entry_frozen();
DROP TRIGGER loyalty_entry_sums_ins ON loyalty_entry;
DROP TRIGGER loyalty_entry_sums_del ON loyalty_entry;
DROP FUNCTION loyalty_entry_sums();
"""

GRANTS = {
    ADMINISTRATOR: [
        "loyalty.adjust_points",
        "loyalty.view_entry",
        "loyalty.view_account",
        "loyalty.view_programme",
        "loyalty.change_programme",
        "loyalty.view_tier",
        "loyalty.add_tier",
        "loyalty.change_tier",
        "loyalty.view_productrule",
        "loyalty.add_productrule",
        "loyalty.change_productrule",
        "loyalty.delete_productrule",
        "loyalty.view_promotion",
        "loyalty.add_promotion",
        "loyalty.change_promotion",
        "loyalty.delete_promotion",
    ],
    MARKETER: ["loyalty.view_entry", "loyalty.view_account", "loyalty.view_tier"],
    STORE_MANAGER: ["loyalty.view_entry", "loyalty.view_account", "loyalty.view_tier"],
}

TASKS = [
    ("loyalty: activate held points", "loyalty.tasks.activate_points", "10", "2"),
    ("loyalty: expire points", "loyalty.tasks.expire_points", "20", "2"),
    ("loyalty: tiers and birthday bonuses", "loyalty.tasks.nightly_tiers_and_bonuses", "40", "2"),
]


def seed(apps, schema_editor):
    Programme = apps.get_model("loyalty", "Programme")
    Tier = apps.get_model("loyalty", "Tier")
    Programme.objects.get_or_create(pk=1)
    for name, threshold, rate in (
        ("Базовый", "0", "0.03"),
        ("Серебряный", "30000", "0.05"),
        ("Золотой", "100000", "0.07"),
    ):
        Tier.objects.get_or_create(
            name=name, defaults={"threshold": Decimal(threshold), "earn_rate": Decimal(rate)}
        )
    create_permissions_now(apps)
    for role, permissions in GRANTS.items():
        grant(apps, role, permissions)
    from django.conf import settings

    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour in TASKS:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})


def unseed(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[t[0] for t in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0001_i18_loyalty"),
        ("crm", "0003_roles"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [
        migrations.RunSQL(SUMS, UNSUMS),
        migrations.RunPython(seed, unseed),
    ]
