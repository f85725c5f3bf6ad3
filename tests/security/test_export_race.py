"""Point 3: the daily export cap holds when one user fires many exports at once."""

import threading

import pytest
from django.db import connection

from crm.models import AuditAction, AuditEvent, StaffProfile
from customers.exports import ExportRefused, customer_export
from customers.selectors.listing import ListFilters
from tests.factories import CustomerFactory, StoreFactory, UserFactory

PARALLEL = 16


@pytest.mark.django_db(transaction=True)
def test_sixteen_parallel_exports_stay_within_the_daily_cap():
    from crm import roles

    store = StoreFactory(code="race", name="Гонка", city="Тверь")
    for _ in range(30):
        CustomerFactory(home_store=store)
    user = UserFactory(username="racer", role=roles.ADMINISTRATOR)
    cap = 100  # room for three exports of 30 rows, not four
    StaffProfile.objects.update_or_create(user=user, defaults={"export_daily_cap": cap})
    start = threading.Barrier(PARALLEL)
    delivered: list[int] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one_export(index: int) -> None:
        try:
            start.wait()
            try:
                result = customer_export(
                    actor=user, filters=ListFilters(), fmt="csv" if index % 2 else "xlsx"
                )
            except ExportRefused as exc:
                with lock:
                    refused.append(exc.reason)
            else:
                result.file.close()
                with lock:
                    delivered.append(result.rows)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_export, args=(i,)) for i in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(delivered) <= cap
    assert delivered == [30] * 3
    assert refused == ["cap"] * (PARALLEL - 3)
    exported = AuditEvent.objects.filter(actor=user, action=AuditAction.EXPORT)
    assert sum(e.details["rows"] for e in exported) == sum(delivered)
