"""REST endpoints: segment count and results, with the 404 rule for everyone else."""

import pytest

from tests.campaigns.conftest import customer, make_campaign


@pytest.mark.parametrize("persona", ["outsider", "manager_a", "associate_a"])
def test_api_is_404_without_campaign_rights(client, request, persona, marketer):
    campaign = make_campaign(marketer)
    client.force_login(request.getfixturevalue(persona))
    response = client.post(
        "/api/v1/campaigns/segments/count/", {"rules": {}}, content_type="application/json"
    )
    assert response.status_code == 404
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/results/").status_code == 404


def test_api_segment_count_and_validation(client, marketer, store_a, store_b):
    customer(store_a)
    customer(store_b)
    client.force_login(marketer)
    rules = {"field": "home_store", "op": "in", "value": [store_a.pk]}
    response = client.post(
        "/api/v1/campaigns/segments/count/", {"rules": rules}, content_type="application/json"
    )
    assert response.json() == {"count": 1}
    response = client.post(
        "/api/v1/campaigns/segments/count/",
        {"rules": {"field": "nope"}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "rules" in response.json()["error"]["fields"]


def test_api_results(client, marketer):
    campaign = make_campaign(marketer)
    client.force_login(marketer)
    body = client.get(f"/api/v1/campaigns/{campaign.pk}/results/").json()
    assert body["campaign_id"] == campaign.pk
    assert [f["name"] for f in body["figures"]] == [
        "response_rate",
        "revenue_per_customer",
        "margin_per_customer",
    ]
    assert client.get("/api/v1/campaigns/999999/results/").status_code == 404
