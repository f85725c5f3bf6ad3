"""The list's bulk bar beyond managers and tags (issue 15): adding the selection to a static
segment (campaigns' action, registered from above), exporting it through the guarded export,
and the scope every action keeps whatever ids a request carries."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission

from campaigns.models import Segment, SegmentMember
from crm.models import AuditAction, AuditEvent, StaffProfile
from customers.disclosure import taken_today
from customers.models import Tag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _static(name="Вручную"):
    from django.utils import timezone

    return Segment.objects.create(name=name, frozen_at=timezone.now())


def _members(segment) -> set[int]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True))


def test_marketer_sees_segment_action_but_not_card_changes(client, marketer):
    _static("Летние")
    client.force_login(marketer)
    body = client.get("/customers/").content.decode()
    assert 'value="add_to_segment"' in body and "Летние" in body
    assert 'value="assign_manager"' not in body and 'value="export"' not in body


def test_marketer_adds_ticked_rows_to_a_static_segment_audited(client, marketer, anna, boris):
    segment = _static()
    client.force_login(marketer)
    response = client.post(
        "/customers/bulk/",
        {"ids": [anna.pk, boris.pk], "action": "add_to_segment", "value": segment.pk},
    )
    assert response.status_code == 302
    assert _members(segment) == {anna.pk, boris.pk}
    # Again: those already in are skipped, nothing doubles.
    client.post(
        "/customers/bulk/", {"ids": [anna.pk], "action": "add_to_segment", "value": segment.pk}
    )
    assert SegmentMember.objects.filter(segment=segment).count() == 2
    events = AuditEvent.objects.filter(action=AuditAction.CUSTOMER_UPDATE).order_by("id")
    assert [e.details["changed"] for e in events] == [2, 0]
    assert events[0].details["bulk"] == "add_to_segment"
    assert events[0].object_id == str(segment.pk) and sorted(events[0].details["ids"]) == sorted(
        [anna.pk, boris.pk]
    )


def test_all_matching_go_to_a_new_named_static_segment(client, marketer, anna, boris):
    client.force_login(marketer)
    client.post(
        "/customers/bulk/",
        {
            "all_matching": "1",
            "query": "q=Иванова",
            "action": "add_to_segment",
            "value": "new",
            "name": "Ивановы",
        },
    )
    segment = Segment.objects.get(name="Ивановы")
    assert segment.is_frozen and _members(segment) == {anna.pk}


def test_a_segment_with_rules_takes_no_customers_by_hand(client, marketer, anna):
    ruled = Segment.objects.create(name="По правилам", rules={})
    client.force_login(marketer)
    client.post(
        "/customers/bulk/", {"ids": [anna.pk], "action": "add_to_segment", "value": ruled.pk}
    )
    client.post(
        "/customers/bulk/", {"ids": [anna.pk], "action": "add_to_segment", "value": "99999999"}
    )
    assert not SegmentMember.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CUSTOMER_UPDATE).exists()


def test_manager_cannot_add_another_stores_customer_by_forging_ids(client, manager_a, anna, boris):
    manager_a.user_permissions.add(Permission.objects.get(codename="manage_campaigns"))
    segment = _static()
    vip = Tag.objects.create(name="VIP")
    client.force_login(manager_a)
    for action, value in (("add_to_segment", segment.pk), ("add_tag", vip.pk)):
        client.post(
            "/customers/bulk/", {"ids": [anna.pk, boris.pk], "action": action, "value": value}
        )
    assert _members(segment) == {anna.pk}
    assert list(vip.customers.values_list("pk", flat=True)) == [anna.pk]
    # Only another store's customer: nothing to do, nothing written.
    client.post("/customers/bulk/", {"ids": [boris.pk], "action": "remove_tag", "value": vip.pk})
    assert vip.customers.count() == 1


def test_all_matching_is_computed_through_the_door(client, manager_a, anna, boris):
    vip = Tag.objects.create(name="VIP")
    client.force_login(manager_a)
    client.post("/customers/bulk/", {"all_matching": "1", "action": "add_tag", "value": vip.pk})
    assert list(vip.customers.values_list("pk", flat=True)) == [anna.pk]


def test_a_damaged_filter_selects_nobody_rather_than_everyone(client, admin_user, anna, boris):
    vip = Tag.objects.create(name="VIP")
    client.force_login(admin_user)
    client.post(
        "/customers/bulk/",
        {"all_matching": "1", "query": "stage=nonsense", "action": "add_tag", "value": vip.pk},
    )
    assert not vip.customers.exists()


def test_selection_exports_through_the_guarded_export(client, admin_user, anna, boris):
    client.force_login(admin_user)
    before = taken_today(admin_user)
    response = client.post(
        "/customers/bulk/", {"ids": [anna.pk], "action": "export", "value": "csv"}
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), csv.Sniffer().sniff(body.splitlines()[0], ";,")))[1:]
    # Anna and the export's trap row; Boris was not ticked.
    assert len(rows) == 2 and str(anna.pk) in {r[0] for r in rows}
    # By id: the trap row's surname is drawn from the common ones, Boris's "Петров" among them.
    assert str(boris.pk) not in {r[0] for r in rows}
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.details["filters"]["ids"] == [anna.pk] and event.details["rows"] == 1
    assert event.details["trap"]
    assert taken_today(admin_user) == before + 1


def test_selection_export_obeys_the_daily_cap(client, admin_user, store_a):
    people = [CustomerFactory(home_store=store_a) for _ in range(3)]
    StaffProfile.objects.update_or_create(user=admin_user, defaults={"export_daily_cap": 2})
    client.force_login(admin_user)
    response = client.post(
        "/customers/bulk/",
        {"ids": [p.pk for p in people], "action": "export", "value": "xlsx"},
    )
    assert response.status_code == 429
    refused = AuditEvent.objects.get(action=AuditAction.EXPORT_REFUSED)
    assert refused.details["reason"] == "cap" and refused.details["rows"] == 3
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


def test_export_is_not_offered_or_run_without_the_permission(client, manager_a, anna):
    client.force_login(manager_a)
    response = client.post(
        "/customers/bulk/", {"ids": [anna.pk], "action": "export", "value": "csv"}
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(
        action__in=[AuditAction.EXPORT, AuditAction.EXPORT_REFUSED]
    ).exists()


def test_export_needs_post_and_a_csrf_token(admin_user, anna):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.get("/customers/bulk/").status_code == 405
    response = strict.post(
        "/customers/bulk/", {"ids": [anna.pk], "action": "export", "value": "csv"}
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


def test_outsider_cannot_use_the_bulk_bar(client, outsider, anna):
    client.force_login(outsider)
    response = client.post(
        "/customers/bulk/", {"ids": [anna.pk], "action": "add_tag", "value": "1"}
    )
    assert response.status_code in (403, 404)
