"""Each rule on hand-built receipts through the real POS API and PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from loyalty import services
from loyalty.models import Account, Entry, EntryKind, ProductRule, Promotion, ReceiptPoints
from sales.models import Receipt

from .conftest import assert_ledger_consistent, give_points, line, receipt, return_line

pytestmark = pytest.mark.django_db
D = Decimal


def test_receipt_earns_base_tier_share_as_pending_points(pos, customer, catalogue):
    response = pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS", "1", "1234.50")], customer=customer),
        format="json",
    )

    assert response.status_code == 201, response.json()
    points = response.json()["points"]
    assert points["earned"] == "37.03"  # 3% of 1234.50, rounded down to the kopeck
    assert points["pending"] == "37.03" and points["available"] == "0.00"
    assert points["tier"] == "Базовый"
    earn = Entry.objects.get(kind=EntryKind.EARN)
    assert earn.activates_at == Receipt.objects.get().purchased_at + dt.timedelta(days=14)
    assert_ledger_consistent()


def test_lookup_returns_tier_available_and_pending(pos, customer, catalogue):
    pos.post("/api/v1/receipts/", receipt("R1", [line("DRESS")], customer=customer), format="json")
    give_points(customer, "50")

    body = pos.get("/api/v1/customers/lookup/", {"card": "7700001"}).json()

    assert body["points"] == {"tier": "Базовый", "available": "50.00", "pending": "30.00"}


def test_redemption_travels_with_the_receipt_and_money_only_earns(pos, customer, catalogue):
    give_points(customer, "100")

    response = pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS", "1", "1000.00")], customer=customer, points="100"),
        format="json",
    )

    assert response.status_code == 201, response.json()
    points = response.json()["points"]
    assert (points["redeemed"], points["earned"], points["available"]) == (
        "100.00",
        "27.00",
        "0.00",
    )
    assert Entry.objects.filter(kind=EntryKind.REDEEM).get().available_delta == D("-100")
    assert_ledger_consistent()


def test_redemption_beyond_the_balance_is_409_with_the_balance_left(pos, customer, catalogue):
    give_points(customer, "40")

    response = pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS")], customer=customer, points="50"),
        format="json",
    )

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "insufficient_points" and error["available"] == "40.00"
    assert "points_redeemed" in error["fields"]
    assert not Receipt.objects.exists()  # the receipt rolled back with the refusal
    assert Account.objects.get().available == D("40")


def test_redemption_beyond_the_share_of_the_receipt_is_400(pos, customer, catalogue):
    give_points(customer, "1000")

    response = pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS", "1", "1000.00")], customer=customer, points="300.01"),
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["points_redeemed"] == [
        "At most 300.00 points may be spent on this receipt."
    ]
    assert not Receipt.objects.exists()


def test_points_without_a_customer_are_a_field_error(pos, catalogue):
    response = pos.post(
        "/api/v1/receipts/", receipt("R1", [line("DRESS")], points="10"), format="json"
    )

    assert response.status_code == 400
    assert "points_redeemed" in response.json()["error"]["fields"]


def test_replay_gives_the_same_answer_and_redeems_once(pos, customer, catalogue):
    give_points(customer, "100")
    payload = receipt("R1", [line("DRESS")], customer=customer, points="60")

    first = pos.post("/api/v1/receipts/", payload, format="json")
    give_points(customer, "5")  # the balance moves on; the replay still tells the receipt's own
    again = pos.post("/api/v1/receipts/", payload, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["points"] == first.json()["points"]
    assert Entry.objects.filter(kind=EntryKind.REDEEM).count() == 1
    assert Account.objects.get().available == D("45")


def test_same_pos_id_with_other_points_is_a_conflict(pos, customer, catalogue):
    give_points(customer, "100")
    pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS")], customer=customer, points="10"),
        format="json",
    )

    response = pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS")], customer=customer, points="20"),
        format="json",
    )

    assert response.status_code == 409
    assert Entry.objects.filter(kind=EntryKind.REDEEM).count() == 1


def test_excluded_category_neither_earns_nor_burns_and_sku_has_own_rate(pos, customer, catalogue):
    ProductRule.objects.create(category=catalogue["tobacco"].category, no_earn=True, no_burn=True)
    ProductRule.objects.create(product=catalogue["gift"], earn_rate=D("0.10"))
    give_points(customer, "1000")

    response = pos.post(
        "/api/v1/receipts/",
        receipt(
            "R1",
            [
                line("DRESS", "1", "1000.00"),
                line("TOBACCO", "1", "200.00"),
                line("GIFT", "1", "500.00"),
            ],
            customer=customer,
            points="450",
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    lines = ReceiptPoints.objects.get().lines
    # 450 = 30% of the 1500 that may be paid with points, spread 1000:500.
    assert lines["1"] == {"earned": "21.00", "redeemed": "300.00"}  # 3% of 700 paid
    assert "2" not in lines  # tobacco: nothing burned, nothing earned
    assert lines["3"] == {"earned": "35.00", "redeemed": "150.00"}  # own 10% of 350 paid


def test_promotion_multiplies_points_earned_in_its_window(pos, customer, catalogue):
    now = timezone.now()
    Promotion.objects.create(
        name="x2",
        starts_at=now - dt.timedelta(days=1),
        ends_at=now + dt.timedelta(days=1),
        multiplier=D("2"),
    )

    inside = pos.post(
        "/api/v1/receipts/", receipt("R1", [line("DRESS")], customer=customer), format="json"
    ).json()
    outside = pos.post(
        "/api/v1/receipts/",
        receipt("R2", [line("DRESS")], customer=customer, at=now - dt.timedelta(days=3)),
        format="json",
    ).json()

    assert (inside["points"]["earned"], outside["points"]["earned"]) == ("60.00", "30.00")


def test_tier_follows_trailing_12_month_spend_net_of_returns(pos, customer, catalogue):
    response = pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS", "35", "1000.00")], customer=customer),
        format="json",
    )
    assert response.json()["points"]["tier"] == "Серебряный"
    assert response.json()["points"]["earned"] == "1050.00"  # earned at the tier held before

    return_line(pos, "V1", "R1", "10")

    assert Account.objects.get().tier.name == "Базовый"  # 25 000 net is below 30 000


def test_a_booking_writes_the_account_only_when_the_tier_changes(pos, customer, catalogue):
    def buy(pos_id: str, quantity: str) -> None:
        body = receipt(pos_id, [line("DRESS", quantity, "1000.00")], customer=customer)
        assert pos.post("/api/v1/receipts/", body, format="json").status_code == 201

    buy("R1", "5")
    placed = Account.objects.get()
    assert (placed.tier.name, placed.spend_12m) == ("Базовый", D("5000"))

    buy("R2", "5")  # 10 000: still Базовый, the account's spend is left as it was placed
    assert Account.objects.get().spend_12m == D("5000")

    buy("R3", "25")  # 35 000 crosses 30 000: the new tier with the spend it was placed by
    crossed = Account.objects.get()
    assert (crossed.tier.name, crossed.spend_12m) == ("Серебряный", D("35000"))

    buy("R4", "1")
    services.tiers_recompute()  # the nightly run writes every account's spend
    assert Account.objects.get().spend_12m == D("36000")


def test_activation_after_the_hold_then_returns_take_back_to_the_kopeck(pos, customer, catalogue):
    sold = timezone.now() - dt.timedelta(days=20)
    pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS", "3", "333.33")], customer=customer, at=sold),
        format="json",
    )
    # The hold has passed already: booked and activated at once.
    assert services.points_activate_due() == 0
    assert Account.objects.get().available == D("29.99")  # 3% of 999.99

    for n in range(3):
        response = return_line(pos, f"V{n}", "R1", "1")
        assert response.status_code == 201, response.json()

    reversed_ = [
        e.available_delta for e in Entry.objects.filter(kind=EntryKind.REVERSE).order_by("id")
    ]
    # Cumulative rounding (10.00, 19.99, 29.99 taken in all): exact to the kopeck.
    assert reversed_ == [D("-10.00"), D("-9.99"), D("-10.00")]
    assert Account.objects.get().available == 0
    assert_ledger_consistent()


def test_return_of_pending_points_takes_them_from_pending(pos, customer, catalogue):
    pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS", "2", "500.00")], customer=customer),
        format="json",
    )

    return_line(pos, "V1", "R1", "0.5")

    account = Account.objects.get()
    assert (account.pending, account.available, account.debt) == (D("22.50"), 0, 0)
    services.points_activate_due(now=timezone.now() + dt.timedelta(days=15))
    account.refresh_from_db()
    assert (account.pending, account.available) == (0, D("22.50"))


def test_return_restores_redeemed_points_and_spent_earnings_become_debt(pos, customer, catalogue):
    give_points(customer, "300")
    sold = timezone.now() - dt.timedelta(days=20)
    pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS", "2", "500.00")], customer=customer, points="300", at=sold),
        format="json",
    )
    services.points_activate_due()  # 3% of the 700 paid: 21.00 available
    give_points(customer, "-21")  # spent elsewhere

    return_line(pos, "V1", "R1", "2")

    account = Account.objects.get()
    # 300 burned come back; the 21 earned are taken from them, nothing is left owing.
    assert (account.available, account.debt) == (D("279.00"), 0)
    give_points(customer, "-279")
    assert_ledger_consistent()


def test_debt_is_settled_by_the_next_activation(pos, customer, catalogue):
    sold = timezone.now() - dt.timedelta(days=20)
    pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS")], customer=customer, at=sold),
        format="json",
    )
    services.points_activate_due()
    give_points(customer, "-30")  # spent all 30
    return_line(pos, "V1", "R1", "1")
    assert Account.objects.get().debt == D("30")

    pos.post(
        "/api/v1/receipts/",
        receipt("R2", [line("DRESS", "2")], customer=customer, at=sold),
        format="json",
    )
    services.points_activate_due()

    account = Account.objects.get()
    assert (account.available, account.debt) == (D("30"), 0)  # 60 earned, 30 settled the debt
    assert_ledger_consistent()


def test_expiry_falls_on_the_store_local_midnight(pos, customer, catalogue, store_a):
    store_a.timezone = "Asia/Vladivostok"  # UTC+10
    store_a.save()
    # 2025-01-10 20:00 UTC is already 2025-01-11 in Vladivostok.
    sold = dt.datetime(2025, 1, 10, 20, 0, tzinfo=dt.UTC)
    pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS")], customer=customer, at=sold),
        format="json",
    )
    services.points_activate_due()
    expires = Entry.objects.get(kind=EntryKind.ACTIVATE).expires_at
    # Valid through 2026-01-11 local; gone at its end (2026-01-11 14:00 UTC).
    assert expires == dt.datetime(2026, 1, 11, 14, 0, tzinfo=dt.UTC)

    assert services.points_expire_due(now=expires - dt.timedelta(seconds=1)) == 0
    assert services.points_expire_due(now=expires) == 1
    assert services.points_expire_due(now=expires + dt.timedelta(days=1)) == 0  # rerun: nothing
    assert Account.objects.get().available == 0
    assert Entry.objects.get(kind=EntryKind.EXPIRE).available_delta == D("-30")


def test_expiry_counts_spent_points_against_the_oldest(pos, customer, catalogue):
    now = timezone.now()
    services.points_adjust(actor=None, customer=customer, amount=D("100"), reason="a")
    Entry.objects.create(
        account=Account.objects.get(),
        kind=EntryKind.ADJUST,
        at=now,
        available_delta=D("50"),
        expires_at=now + dt.timedelta(days=400),
    )
    give_points(customer, "-80")  # takes 80 of the first 100

    services.points_expire_due(now=now + dt.timedelta(days=370))

    assert Account.objects.get().available == D("50")  # 20 left of the first credit expired


def test_offline_bulk_checks_redemptions_in_purchase_order_and_flags_overspent(
    pos, customer, catalogue
):
    give_points(customer, "100")
    base = timezone.now() - dt.timedelta(hours=5)
    later = receipt(
        "B2", [line("DRESS")], customer=customer, points="80", at=base + dt.timedelta(hours=1)
    )
    earlier = receipt("B1", [line("DRESS")], customer=customer, points="60", at=base)

    body = pos.post("/api/v1/receipts/bulk/", {"receipts": [later, earlier]}, format="json").json()

    assert body["created"] == 2
    by_id = {r["pos_receipt_id"]: r for r in body["results"]}
    assert by_id["B1"]["points"]["redeemed"] == "60.00"
    assert by_id["B2"]["points"]["refused"] is True
    assert by_id["B2"]["points"]["redeemed"] == "0.00"
    flagged = ReceiptPoints.objects.get(refused=True)
    assert flagged.receipt.pos_receipt_id == "B2" and flagged.requested == D("80")
    assert Account.objects.get().available == D("40")
    assert_ledger_consistent()


def test_database_refuses_a_row_that_takes_the_balance_below_zero(customer):
    give_points(customer, "10")
    account = Account.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(
            account=account, kind=EntryKind.REDEEM, at=timezone.now(), available_delta=D("-10.01")
        )

    assert Account.objects.get().available == D("10")


def test_ledger_rows_and_balances_cannot_be_rewritten(customer):
    give_points(customer, "10")
    entry = Entry.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.filter(pk=entry.pk).update(available_delta=D("1000"))
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE loyalty_account SET available = 1000")

    assert Account.objects.get().available == D("10")


def test_welcome_bonus_once_for_a_new_card_with_consent(store_a):
    from tests.factories import CustomerFactory

    with_consent = CustomerFactory(home_store=store_a, consent_sms=True)
    without = CustomerFactory(home_store=store_a)
    services.welcome_bonus_grant(customer=with_consent)  # a second time: nothing

    assert Account.objects.get(customer=with_consent).available == D("200")
    assert not Account.objects.filter(customer=without).exists()


def test_birthday_bonus_granted_ahead_once(store_a):
    from tests.factories import CustomerFactory

    person = CustomerFactory(home_store=store_a, birth_date=dt.date(1990, 6, 17))

    assert services.birthday_bonuses_grant(today=dt.date(2026, 6, 10)) == 1
    assert services.birthday_bonuses_grant(today=dt.date(2026, 6, 10)) == 0
    assert Account.objects.get(customer=person).available == D("300")


def test_bulk_lock_reads_a_tier_the_rule_book_does_not_have(customer):
    from loyalty.models import Tier
    from loyalty.services.ledger import accounts_lock_sums

    give_points(customer, "10")
    tier = Tier.objects.create(name="Платиновый", threshold=D("500000"), earn_rate=D("0.10"))
    Account.objects.filter(customer=customer).update(tier=tier)

    with transaction.atomic():
        locked = accounts_lock_sums([customer.pk, customer.pk], tiers=[])

    assert list(locked) == [customer.pk]
    assert locked[customer.pk].tier == tier and locked[customer.pk].available == D("10")
