"""Pages: who may open them, bad input, live count, preview, test send, results, query counts."""

import json

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Message, Segment
from campaigns.services import delivery
from customers.models import Customer
from tests.campaigns.conftest import customer, make_campaign


@pytest.fixture
def campaign(marketer):
    return make_campaign(marketer)


def page_urls(campaign, segment):
    return [
        ("get", reverse("campaigns:list")),
        ("get", reverse("campaigns:create")),
        ("get", reverse("campaigns:detail", args=[campaign.pk])),
        ("get", reverse("campaigns:edit", args=[campaign.pk])),
        ("get", reverse("campaigns:preview", args=[campaign.pk]) + "?customer=1"),
        ("post", reverse("campaigns:test_send", args=[campaign.pk])),
        ("post", reverse("campaigns:start", args=[campaign.pk])),
        ("post", reverse("campaigns:pause", args=[campaign.pk])),
        ("get", reverse("campaigns:progress", args=[campaign.pk])),
        ("get", reverse("campaigns:results", args=[campaign.pk])),
        ("get", reverse("campaigns:results_csv", args=[campaign.pk])),
        ("get", reverse("campaigns:segments")),
        ("get", reverse("campaigns:segment_create")),
        ("post", reverse("campaigns:segment_count")),
        ("get", reverse("campaigns:segment_edit", args=[segment.pk])),
        ("post", reverse("campaigns:segment_freeze", args=[segment.pk])),
    ]


@pytest.mark.parametrize("persona", ["outsider", "manager_a", "associate_a"])
def test_users_without_campaign_rights_get_404_everywhere(client, request, persona, campaign):
    segment = Segment.objects.create(name="s", rules={})
    client.force_login(request.getfixturevalue(persona))
    for method, url in page_urls(campaign, segment):
        assert getattr(client, method)(url).status_code == 404, url
    assert Campaign.objects.get().status == "draft"
    assert not Segment.objects.get().is_frozen


def test_anonymous_is_sent_to_login(client, campaign):
    response = client.get(reverse("campaigns:list"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_marketer_and_admin_open_every_page(client, marketer, admin_user, campaign, store_a):
    who = customer(store_a)
    segment = Segment.objects.create(name="s", rules={})
    for user in (marketer, admin_user):
        client.force_login(user)
        for url in (
            reverse("campaigns:list"),
            reverse("campaigns:create"),
            reverse("campaigns:detail", args=[campaign.pk]),
            reverse("campaigns:preview", args=[campaign.pk]) + f"?customer={who.pk}",
            reverse("campaigns:progress", args=[campaign.pk]),
            reverse("campaigns:results", args=[campaign.pk]),
            reverse("campaigns:segments"),
            reverse("campaigns:segment_edit", args=[segment.pk]),
        ):
            assert client.get(url).status_code == 200, url


def test_campaign_list_has_no_n_plus_one(client, marketer, store_a, django_assert_max_num_queries):
    customer(store_a)
    for i in range(5):
        c = make_campaign(marketer, name=f"c{i}")
        delivery.materialise(campaign=c, occasion="once", customers=Customer.objects.all())
    client.force_login(marketer)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("campaigns:list"))
    assert response.content.count(b"/campaigns/") >= 5


def test_create_campaign_with_bad_template_is_400_and_writes_nothing(client, marketer):
    client.force_login(marketer)
    data = {
        "name": "x",
        "kind": "one_off",
        "channel": "email",
        "subject": "Hi",
        "body_html": "{% load evil %}{% include 'x.html' %}",
        "holdout_percent": "10",
        "attribution_days": "14",
        "days_before": "0",
        "is_marketing": "on",
    }
    response = client.post(reverse("campaigns:create"), data)
    assert response.status_code == 400
    assert b"Tags not allowed here" in response.content
    assert not Campaign.objects.exists()
    response = client.post(
        reverse("campaigns:create"), {**data, "kind": "holiday", "body_html": "ok"}
    )
    assert response.status_code == 400
    assert not Campaign.objects.exists()
    response = client.post(reverse("campaigns:create"), {**data, "body_html": "<p>ok</p>"})
    assert response.status_code == 302
    assert Campaign.objects.get().created_by == marketer


def test_live_count_and_its_errors(client, marketer, store_a, store_b):
    customer(store_a)
    customer(store_a)
    customer(store_b)
    client.force_login(marketer)
    rules = {"op": "and", "rules": [{"field": "home_store", "op": "in", "value": [store_a.pk]}]}
    response = client.post(reverse("campaigns:segment_count"), {"rules": json.dumps(rules)})
    assert response.status_code == 200
    assert b"2 customers" in response.content
    bad = {"field": "home_store", "op": "gte", "value": 1}
    response = client.post(reverse("campaigns:segment_count"), {"rules": json.dumps(bad)})
    assert response.status_code == 400
    assert b"unknown operator" in response.content


def test_segment_save_validates_and_stores_tree(client, marketer, store_a):
    client.force_login(marketer)
    rules = {"op": "or", "rules": [{"field": "home_store", "op": "in", "value": [store_a.pk]}]}
    response = client.post(
        reverse("campaigns:segment_create"), {"name": "A", "rules": json.dumps(rules)}
    )
    assert response.status_code == 302
    assert Segment.objects.get().rules == rules
    response = client.post(reverse("campaigns:segment_create"), {"name": "B", "rules": "{bad"})
    assert response.status_code == 400
    assert Segment.objects.count() == 1


def test_preview_renders_for_a_visible_customer_and_404_for_unknown(
    client, marketer, campaign, store_a
):
    who = customer(store_a, first_name="Анна", patronymic="Петровна")
    client.force_login(marketer)
    url = reverse("campaigns:preview", args=[campaign.pk])
    response = client.get(url, {"customer": who.pk})
    assert "Анна Петровна".encode() in response.content
    assert client.get(url, {"customer": 999999}).status_code == 404
    assert client.get(url, {"customer": "x"}).status_code == 400
    assert not Message.objects.exists()


def test_test_send_goes_to_the_given_address_only(client, smtp, marketer, campaign, store_a):
    who = customer(store_a, email="real@mail.ru")
    client.force_login(marketer)
    response = client.post(
        reverse("campaigns:test_send", args=[campaign.pk]),
        {"customer": who.pk, "to": "maria@example.com"},
    )
    assert response.status_code == 200
    assert smtp.recipients() == ["maria@example.com"]
    assert smtp.messages[0]["Subject"].startswith("[TEST]")
    assert not Message.objects.exists()


def test_results_csv_download(client, marketer, campaign):
    client.force_login(marketer)
    response = client.get(reverse("campaigns:results_csv", args=[campaign.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert b"response_rate" in response.content


def test_preview_of_a_customer_outside_the_users_visibility_is_404(
    client, manager_a, store_a, store_b
):
    from django.contrib.auth.models import Permission

    manager_a.user_permissions.add(Permission.objects.get(codename="manage_campaigns"))
    campaign = make_campaign(manager_a)
    mine = customer(store_a)
    theirs = customer(store_b)
    client.force_login(manager_a)
    url = reverse("campaigns:preview", args=[campaign.pk])
    assert client.get(url, {"customer": mine.pk}).status_code == 200
    assert client.get(url, {"customer": theirs.pk}).status_code == 404
    # The manager's segment counts only what the manager sees, too.
    response = client.post(reverse("campaigns:segment_count"), {"rules": "{}"})
    assert b"1 customer" in response.content
