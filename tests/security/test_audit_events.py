"""Way out 10, audit gaps: rights, roles, deactivation, settings, campaign pause and resume are
recorded with actor, address, target and before/after, and the audit page reads them out in
the reader's language."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.forms import CheckboxInput

from analytics.models import AnalyticsSettings
from campaigns.models import Campaign, CampaignStatus
from crm import roles
from crm.api_tokens import user_token_issue
from crm.models import AuditAction, AuditEvent, UserApiToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def admin_form_data(response) -> dict:
    """What the browser would post back from an admin change page, fields and inlines."""
    data: dict = {}

    def add(form):
        for field in form:
            value = field.value()
            widget = field.field.widget
            if isinstance(widget, CheckboxInput):
                if value:
                    data[field.html_name] = "on"
            elif value is None:
                continue
            elif hasattr(widget, "widgets"):
                for index, part in enumerate(widget.decompress(value)):
                    data[f"{field.html_name}_{index}"] = "" if part is None else str(part)
            elif isinstance(value, list | tuple):
                data[field.html_name] = [str(v) for v in value]
            else:
                data[field.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def _post_change(client, url, **changes):
    data = admin_form_data(client.get(url))
    data.update(changes)
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


@pytest.fixture
def clerk(db):
    return UserFactory(username="clerk", role=roles.STORE_MANAGER, is_staff=False)


def test_granting_and_revoking_a_user_permission_is_audited(client, admin_user, clerk):
    export = Permission.objects.get(codename="export_customers")
    url = f"/admin/auth/user/{clerk.pk}/change/"
    client.force_login(admin_user)

    _post_change(client, url, user_permissions=[str(export.pk)])
    _post_change(client, url, user_permissions=[])

    granted, revoked = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).order_by(
        "id"
    )
    assert granted.details["before"] == {"permissions": []}
    assert granted.details["after"] == {"permissions": ["customers.export_customers"]}
    assert revoked.details["after"] == {"permissions": []}
    for event in (granted, revoked):
        assert (event.actor, event.object_type, event.object_id) == (
            admin_user,
            "auth.user",
            str(clerk.pk),
        )
        assert event.ip_address == "127.0.0.1"


def test_changing_a_role_is_audited(client, admin_user, clerk):
    marketer = Group.objects.get(name=roles.MARKETER)
    client.force_login(admin_user)
    _post_change(client, f"/admin/auth/user/{clerk.pk}/change/", groups=[str(marketer.pk)])
    event = AuditEvent.objects.get(action=AuditAction.ROLE_CHANGE)
    assert event.details["before"] == {"roles": [roles.STORE_MANAGER]}
    assert event.details["after"] == {"roles": [roles.MARKETER]}


def test_changing_what_a_role_may_do_is_audited(client):
    # Roles themselves are edited by a superuser (Administrators may only view them).
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    group = Group.objects.get(name=roles.MARKETER)
    export = Permission.objects.get(codename="export_customers")
    before = sorted(str(p.pk) for p in group.permissions.all())
    client.force_login(root)

    _post_change(
        client, f"/admin/auth/group/{group.pk}/change/", permissions=[*before, str(export.pk)]
    )

    event = AuditEvent.objects.get(action=AuditAction.PERMISSION_CHANGE)
    assert event.object_type == "auth.group" and event.details["group"] == roles.MARKETER
    added = set(event.details["after"]["permissions"]) - set(event.details["before"]["permissions"])
    assert added == {"customers.export_customers"}


def test_deactivating_a_user_is_audited_and_ends_their_tokens(client, admin_user, clerk):
    user_token_issue(user=clerk)
    client.force_login(admin_user)
    url = f"/admin/auth/user/{clerk.pk}/change/"
    data = admin_form_data(client.get(url))
    data.pop("is_active")
    assert client.post(url, data).status_code == 302

    event = AuditEvent.objects.get(action=AuditAction.USER_DEACTIVATE)
    assert (event.actor, event.object_id) == (admin_user, str(clerk.pk))
    assert (event.details["before"], event.details["after"]) == (
        {"active": True},
        {"active": False},
    )
    assert not UserApiToken.objects.filter(user=clerk).exists()


def test_changing_analytics_settings_is_audited(client, admin_user):
    AnalyticsSettings.objects.get_or_create(pk=1)
    client.force_login(admin_user)

    _post_change(client, "/admin/analytics/analyticssettings/1/change/", window_days="180")

    event = AuditEvent.objects.get(action=AuditAction.SETTINGS_CHANGE)
    assert event.object_type == "analytics.analyticssettings"
    assert (event.details["before"], event.details["after"]) == (
        {"window_days": 365},
        {"window_days": 180},
    )


def test_campaign_pause_and_resume_are_audited(client, marketer):
    campaign = Campaign.objects.create(
        name="Триггер ко дню рождения",
        kind="birthday",
        channel="sms",
        body_text="С днём рождения!",
        status=CampaignStatus.ACTIVE,
        created_by=marketer,
    )
    from django.utils import timezone

    Campaign.objects.filter(pk=campaign.pk).update(started_at=timezone.now())
    client.force_login(marketer)

    client.post(f"/campaigns/{campaign.pk}/pause/")
    client.post(f"/campaigns/{campaign.pk}/resume/")

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE
    pause, resume = AuditEvent.objects.filter(
        action__in=[AuditAction.CAMPAIGN_PAUSE, AuditAction.CAMPAIGN_RESUME]
    ).order_by("id")
    assert (pause.action, pause.details["before"], pause.details["after"]) == (
        AuditAction.CAMPAIGN_PAUSE,
        {"status": "active"},
        {"status": "paused"},
    )
    assert (resume.action, resume.details["after"]) == (
        AuditAction.CAMPAIGN_RESUME,
        {"status": "active"},
    )
    assert pause.actor == marketer and pause.object_id == str(campaign.pk)


def test_audit_page_reads_details_in_the_readers_language(client, admin_user, clerk):
    export = Permission.objects.get(codename="export_customers")
    client.force_login(admin_user)
    _post_change(client, f"/admin/auth/user/{clerk.pk}/change/", user_permissions=[str(export.pk)])
    campaign = Campaign.objects.create(name="Весна", channel="sms", status=CampaignStatus.SENDING)
    client.post(f"/campaigns/{campaign.pk}/pause/")

    page = client.get("/audit/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    assert "{&#x27;" not in page and "{'" not in page and "customers.export_customers" not in page
    assert "Изменил права" in page
    assert "Может выгружать списки клиентов" in page  # the permission by its Russian name
    assert "Приостановлена" in page  # the campaign status by its label, not "paused"


def test_audit_log_stays_append_only_for_administrators(client, admin_user):
    event = AuditEvent.objects.create(action=AuditAction.EXPORT, actor_name="x")
    client.force_login(admin_user)
    assert client.get(f"/admin/crm/auditevent/{event.pk}/change/").status_code == 200
    client.post(f"/admin/crm/auditevent/{event.pk}/change/", {"actor_name": "y"})
    client.post(f"/admin/crm/auditevent/{event.pk}/delete/", {"post": "yes"})
    event.refresh_from_db()
    assert event.actor_name == "x"


def test_audit_page_reads_details_without_a_query_per_event(
    client, admin_user, django_assert_max_num_queries
):
    from crm.audit import audit_record

    for n in range(40):
        audit_record(
            actor=admin_user,
            action=AuditAction.PERMISSION_CHANGE,
            obj=admin_user,
            before={"permissions": []},
            after={"permissions": ["customers.export_customers", "customers.view_customer"]},
        )
        audit_record(
            actor=admin_user,
            action=AuditAction.SETTINGS_CHANGE,
            before={"x": n},
            after={"x": n + 1},
        )
    client.force_login(admin_user)
    client.get("/audit/")  # warms the permission names, read once per process
    with django_assert_max_num_queries(12):
        page = client.get("/audit/")
    assert page.content.decode().count('data-testid="audit-details"') == 80


def test_audit_page_labels_export_details_in_russian(client, admin_user):
    from crm.audit import audit_record

    audit_record(
        actor=admin_user,
        action=AuditAction.EXPORT,
        format="csv",
        filters={"query": "Иванова", "birthday_days": 7},
        rows=5,
        masked=True,
        sha256="ab" * 32,
    )
    client.force_login(admin_user)
    page = client.get("/audit/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    details = page[page.index('data-testid="audit-details"') :]
    for label in ("поисковый запрос", "день рождения в ближайшие, дней", "хеш файла", "строк"):
        assert label in details
    assert "birthday_days" not in details and "masked" not in details
