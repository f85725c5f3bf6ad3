"""The morning digest (issue 15): opt-in in the profile, once per day per user, at the start of
their store's day, in their language, through a real SMTP server."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from crm.models import StaffProfile
from customers.digest import morning_digests_send
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")


def at_moscow(hour: int) -> dt.datetime:
    day = timezone.localdate()
    return dt.datetime.combine(day, dt.time(hour, 5), tzinfo=MOSCOW)


def test_manager_opts_in_on_the_profile_page(client, manager_a):
    client.force_login(manager_a)
    assert client.get("/profile/").status_code == 200
    client.post("/profile/", {"morning_digest": "on", "digest_language": "en"})
    profile = StaffProfile.objects.get(user=manager_a)
    assert profile.morning_digest and profile.digest_language == "en"


def test_digest_goes_out_once_a_day_after_the_stores_morning(smtp, manager_a, anna, store_a):
    StaffProfile.objects.filter(user=manager_a).update(morning_digest=True, digest_language="ru")
    ContactFactory(
        customer=anna,
        staff=manager_a,
        next_step="Позвонить про заказ",
        due_date=at_moscow(9).date() - dt.timedelta(days=3),
    )
    assert morning_digests_send(now=at_moscow(6)) == 0
    assert morning_digests_send(now=at_moscow(8)) == 1
    assert morning_digests_send(now=at_moscow(11)) == 0
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == manager_a.email
    assert "просрочено" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "Позвонить про заказ" in body and f"/customers/{anna.pk}/" in body
    assert "Доброе утро" in body


def test_no_digest_without_opt_in_and_in_the_chosen_language(smtp, manager_a, manager_b):
    StaffProfile.objects.filter(user=manager_b).update(morning_digest=True, digest_language="en")
    assert morning_digests_send(now=at_moscow(9)) == 1
    assert [m["To"] for m in smtp.messages] == [manager_b.email]
    assert "Good morning" in smtp.messages[0].get_body(("plain",)).get_content()
