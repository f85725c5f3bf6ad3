"""Fixtures of the security suite: a small chain base with real-looking cards, POS keys, and
the campaign tests' SMTP server."""

import datetime as dt
import random

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from customers.models import Customer
from sales.apikeys import pos_key_issue
from tests.campaigns.conftest import smtp  # noqa: F401 - a fixture, used by name
from tests.factories import CustomerFactory

FEMALE = [("Анна", "Сергеевна", "Иванова"), ("Мария", "Олеговна", "Смирнова"),
          ("Елена", "Петровна", "Кузнецова"), ("Ольга", "Ивановна", "Попова")]  # fmt: skip
MALE = [("Иван", "Петрович", "Петров"), ("Сергей", "Андреевич", "Соколов"),
        ("Олег", "Ильич", "Морозов"), ("Павел", "Юрьевич", "Волков")]  # fmt: skip


def ean13(body12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def make_base(store, count: int, *, seed: int = 7, gaps: bool = True) -> list[Customer]:
    """`count` cards of `store` shaped like the demo chain's: gendered names, EAN-13 cards in
    the 277 range, emails, birth dates, addresses; some deleted in between, as erasures and
    merges leave gaps in the ids."""
    rnd = random.Random(seed)
    made = []
    for i in range(count + (count // 5 if gaps else 0)):
        female = i % 3 != 2
        first, patronymic, surname = rnd.choice(FEMALE if female else MALE)
        made.append(
            CustomerFactory(
                surname=surname,
                first_name=first,
                patronymic=patronymic,
                gender="f" if female else "m",
                birth_date=dt.date(1960 + rnd.randrange(40), rnd.randrange(1, 13), 10),
                email=f"client{i}.{rnd.randrange(1000)}@mail.ru",
                card_number=ean13(f"277{rnd.randrange(10**9):09d}"),
                city=store.city,
                postal_code=f"101{rnd.randrange(1000):03d}",
                address=f"ул. Тверская, д. {rnd.randrange(1, 90)}, кв. {rnd.randrange(1, 200)}",
                home_store=store,
                lifecycle_stage="customer",
            )
        )
    if gaps:
        for doomed in made[3 : len(made) - 2 : 5][: count // 5]:
            doomed.delete()
    return list(Customer.objects.filter(home_store=store).order_by("id"))


@pytest.fixture
def base_a(store_a):
    return make_base(store_a, 12)


@pytest.fixture
def pos_a(store_a):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {pos_key_issue(store=store_a, name='t').raw}")
    return client


def grant(user, codename: str, app: str = "customers"):
    user.user_permissions.add(
        Permission.objects.get(codename=codename, content_type__app_label=app)
    )
    # Django caches permissions on the instance.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
    return user


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
