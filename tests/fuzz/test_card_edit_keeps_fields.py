"""Issue 13, part 6: the card edit form never wipes what it was not sent (split from
test_bad_input.py; Анна is in tests/fuzz/conftest.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from customers.models import Customer, CustomerPhone
from tests.factories import CustomerFactory


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


# 6. The card edit form never wipes what it was not sent --------------------------------------


def test_edit_with_only_surname_and_stage_keeps_everything_else(client, manager_a, anna):
    before = Customer.objects.get(pk=anna.pk)
    phones = list(anna.phones.values_list("number", flat=True))
    client.force_login(manager_a)
    response = client.post(
        f"/customers/{anna.pk}/edit/", {"surname": "Смирнова", "lifecycle_stage": "customer"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    after = Customer.objects.get(pk=anna.pk)
    assert after.surname == "Смирнова"
    for name in ("first_name", "patronymic", "email", "card_number", "city", "home_store_id"):
        assert getattr(after, name) == getattr(before, name), name
    assert list(after.phones.values_list("number", flat=True)) == phones
    assert client.get(f"/customers/{anna.pk}/").status_code == 200


def test_manager_cannot_move_a_card_out_of_own_scope_by_editing(client, manager_a, anna):
    client.force_login(manager_a)
    response = client.post(f"/customers/{anna.pk}/edit/", {"home_store": ""})
    assert response.status_code == 400
    assert "no longer see" in response.content.decode()
    assert Customer.objects.get(pk=anna.pk).home_store_id == anna.home_store_id


def test_removing_a_phone_is_explicit(client, admin_user, anna):
    client.force_login(admin_user)
    client.post(f"/customers/{anna.pk}/edit/", {"city": "Тула"})
    assert CustomerPhone.objects.filter(customer=anna).count() == 1
    response = client.post(f"/customers/{anna.pk}/edit/", {"phones": ""})
    assert response.status_code == 302
    assert not CustomerPhone.objects.filter(customer=anna).exists()
    assert Customer.objects.get(pk=anna.pk).phone == ""


def _edit_post_of(client, customer) -> dict:
    """Every field exactly as the edit page renders it (what a browser would post unchanged)."""
    response = client.get(f"/customers/{customer.pk}/edit/")
    form, custom = response.context["form"], response.context["custom_form"]
    data = {}
    for bound in [*form, *custom]:
        value = bound.value()
        if isinstance(value, list):
            data[bound.html_name] = [str(v) for v in value]
        else:
            data[bound.html_name] = "" if value is None else str(value)
    for bound in custom:
        data[f"{bound.html_name}__shown"] = "1"
    return data


def _state(customer_id: int) -> dict:
    customer = Customer.objects.get(pk=customer_id)
    values = {
        field.attname: getattr(customer, field.attname)
        for field in Customer._meta.concrete_fields
        if field.attname != "updated_at"
    }
    values["phones"] = list(
        CustomerPhone.objects.filter(customer_id=customer_id)
        .order_by("number")
        .values_list("number", "is_primary")
    )
    return values


def _card_field_names():
    from customers.forms import CustomerForm

    return [*CustomerForm.base_fields]


@pytest.mark.parametrize("left_out", _card_field_names())
def test_edit_with_every_field_but_one_changes_nothing_else(client, admin_user, store_a, left_out):
    from customers.models import CustomField, CustomFieldCategory

    category = CustomFieldCategory.objects.create(name="Размеры")
    CustomField.objects.create(
        key="sizes", name="Sizes", type="multi", choices=["S", "M", "L"], category=category
    )
    customer = CustomerFactory(
        surname="Иванова",
        first_name="Анна",
        patronymic="Сергеевна",
        gender="f",
        birth_date=dt.date(1990, 5, 17),
        email="anna@mail.ru",
        card_number="777",
        postal_code="101000",
        city="Москва",
        address="Тверская, 1",
        workplace="Школа",
        position="Учитель",
        marital_status="married",
        children_count=2,
        interests="книги",
        preferences="синий",
        notes="звонить вечером",
        lifecycle_stage="customer",
        home_store=store_a,
        phone_number="+79161234567",
        custom_fields={"sizes": ["M"]},
    )
    client.force_login(admin_user)
    data = _edit_post_of(client, customer)
    before = _state(customer.pk)
    del data[left_out]
    response = client.post(f"/customers/{customer.pk}/edit/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert _state(customer.pk) == before


def test_edit_without_a_custom_field_keeps_it_and_shown_empty_clears_it(client, admin_user, anna):
    from customers.models import CustomField, CustomFieldCategory

    category = CustomFieldCategory.objects.create(name="Размеры")
    CustomField.objects.create(
        key="sizes", name="Sizes", type="multi", choices=["S", "M"], category=category
    )
    Customer.objects.filter(pk=anna.pk).update(custom_fields={"sizes": ["M"]})
    client.force_login(admin_user)
    assert client.post(f"/customers/{anna.pk}/edit/", {"city": "Тула"}).status_code == 302
    assert Customer.objects.get(pk=anna.pk).custom_fields == {"sizes": ["M"]}
    assert client.post(f"/customers/{anna.pk}/edit/", {"cf-sizes__shown": "1"}).status_code == 302
    assert Customer.objects.get(pk=anna.pk).custom_fields == {}
