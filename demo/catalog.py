"""Reference data of the demo chain: stores, the category tree and its products, acquisition
channels, tags and custom fields. Small tables, written with the ORM."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from crm.models import Store
from customers.models import (
    AcquisitionChannel,
    CustomField,
    CustomFieldCategory,
    CustomFieldType,
    Tag,
)
from sales.models import Category, Product

# (code prefix, city, time zone, relative traffic, shopping centres or streets)
CITIES = [
    ("msk", "Москва", "Europe/Moscow", 3.0, ["ТЦ Европейский", "Тверская", "ТЦ Авиапарк"]),
    ("spb", "Санкт-Петербург", "Europe/Moscow", 2.0, ["Невский", "ТЦ Галерея", "ТЦ Мега Дыбенко"]),
    ("kzn", "Казань", "Europe/Moscow", 1.0, ["ТЦ Кольцо", "Баумана"]),
    ("ekb", "Екатеринбург", "Asia/Yekaterinburg", 1.2, ["ТЦ Гринвич", "Вайнера"]),
    ("nsk", "Новосибирск", "Asia/Novosibirsk", 1.1, ["ТЦ Аура", "Красный проспект"]),
    ("nnv", "Нижний Новгород", "Europe/Moscow", 0.9, ["Большая Покровская"]),
    ("sam", "Самара", "Europe/Samara", 0.8, ["ТЦ Космопорт"]),
    ("krd", "Краснодар", "Europe/Moscow", 0.9, ["ТЦ Красная площадь"]),
    ("rnd", "Ростов-на-Дону", "Europe/Moscow", 0.8, ["ТЦ Горизонт"]),
    ("oms", "Омск", "Asia/Omsk", 0.6, ["ТЦ Мега Омск"]),
    ("krs", "Красноярск", "Asia/Krasnoyarsk", 0.7, ["ТЦ Планета"]),
    ("vvo", "Владивосток", "Asia/Vladivostok", 0.5, ["ТЦ Калина Молл"]),
]


@dataclass(frozen=True)
class StoreSpec:
    code: str
    name: str
    city: str
    timezone: str
    weight: float


def store_specs(count: int) -> list[StoreSpec]:
    """`count` stores: one per city first, then second and third stores in the big cities."""
    specs: list[StoreSpec] = []
    round_no = 0
    while len(specs) < count:
        for prefix, city, tz, weight, places in CITIES:
            if len(specs) == count:
                break
            if round_no and weight < 1.0 and round_no >= len(places):
                continue
            place = places[round_no % len(places)]
            suffix = f" {round_no // len(places) + 1}" if round_no >= len(places) else ""
            specs.append(
                StoreSpec(
                    code=f"{prefix}-{round_no + 1}",
                    name=f"{city}, {place}{suffix}",
                    city=city,
                    timezone=tz,
                    weight=weight,
                )
            )
        round_no += 1
    return specs


def create_stores(specs: list[StoreSpec], opened_on: dt.date) -> list[Store]:
    stores = [
        Store(
            code=s.code,
            name=s.name,
            city=s.city,
            timezone=s.timezone,
            address=s.name.split(", ", 1)[1],
            opened_on=opened_on,
        )
        for s in specs
    ]
    return Store.objects.bulk_create(stores)


# Top categories: (name, SKU prefix, margin share of the price, mix weight for women, for men)
TOP_CATEGORIES = [
    ("Одежда", "CL", 0.55, 0.22, 0.14),
    ("Обувь", "SH", 0.48, 0.08, 0.08),
    ("Косметика", "CO", 0.58, 0.22, 0.05),
    ("Бытовая техника", "HA", 0.20, 0.04, 0.07),
    ("Электроника", "EL", 0.13, 0.04, 0.13),
    ("Продукты", "GR", 0.26, 0.34, 0.46),
    ("Подарки", "GF", 0.50, 0.06, 0.07),
]
CLOTHING, FOOTWEAR, COSMETICS, APPLIANCES, ELECTRONICS, GROCERIES, GIFTS = range(7)

# Subcategory -> [(product, min price, max price)] in roubles; brands are added per product.
SUBCATEGORIES: dict[int, dict[str, list[tuple[str, int, int]]]] = {
    CLOTHING: {
        "Платья": [("Платье трикотажное", 2500, 6000), ("Платье вечернее", 6000, 18000)],
        "Верхняя одежда": [("Пуховик", 9000, 28000), ("Пальто шерстяное", 12000, 35000)],
        "Трикотаж": [("Свитер", 2500, 7000), ("Футболка хлопковая", 700, 2500)],
        "Джинсы и брюки": [("Джинсы", 3000, 9000), ("Брюки классические", 2800, 7500)],
    },
    FOOTWEAR: {
        "Женская обувь": [("Ботильоны", 5000, 14000), ("Туфли", 4000, 11000)],
        "Мужская обувь": [("Ботинки", 5500, 15000), ("Кроссовки", 4000, 12000)],
        "Детская обувь": [("Сандалии детские", 1500, 4000)],
    },
    COSMETICS: {
        "Парфюмерия": [("Туалетная вода", 2500, 9000), ("Парфюмерная вода", 4500, 14000)],
        "Уход за лицом": [("Крем для лица", 600, 4500), ("Сыворотка", 900, 5000)],
        "Декоративная косметика": [("Помада", 400, 2200), ("Тушь для ресниц", 350, 1800)],
    },
    APPLIANCES: {
        "Кухонная техника": [("Чайник электрический", 1500, 7000), ("Блендер", 2500, 12000)],
        "Техника для дома": [("Пылесос", 6000, 45000), ("Утюг", 2000, 9000)],
    },
    ELECTRONICS: {
        "Смартфоны": [("Смартфон", 8000, 60000)],
        "Аксессуары": [("Наушники беспроводные", 1500, 15000), ("Зарядное устройство", 600, 3000)],
        "Умный дом": [("Умная колонка", 3500, 15000)],
    },
    GROCERIES: {
        "Фрукты и овощи": [("Яблоки", 90, 220), ("Томаты", 150, 450), ("Мандарины", 150, 350)],
        "Бакалея": [("Кофе в зёрнах", 600, 1800), ("Чай листовой", 250, 900)],
        "Сладости": [("Шоколад", 90, 450), ("Конфеты в коробке", 400, 1800)],
    },
    GIFTS: {
        "Подарочные наборы": [("Подарочный набор косметики", 1200, 6000)],
        "Сувениры": [("Свеча ароматическая", 500, 2500), ("Кружка с принтом", 400, 1200)],
        "Подарочные карты": [("Подарочная карта", 1000, 5000)],
    },
}
# Sold by weight (quantity in kilograms with grams); the price is per kilogram.
WEIGHED = {"Фрукты и овощи"}

BRANDS = {
    CLOTHING: ["Северянка", "Urban Line", "Мода Style", "Baltic Wool", "Лён и Ко"],
    FOOTWEAR: ["Шагом", "Nordwalk", "Ralf Step", "Котофей"],
    COSMETICS: ["Натура Сибирика", "Лэтуаль Beauty", "Белая Линия", "Aroma Vita"],
    APPLIANCES: ["Поларис", "Redmond", "Kitfort", "Scarlett"],
    ELECTRONICS: ["Xiaomi", "Samsung", "Honor", "Яндекс", "JBL"],
    GROCERIES: ["Вкусвилл", "Бабаевский", "Ahmad", "Жокей", "Сады Придонья"],
    GIFTS: ["Подарок.ру", "Hand Made", "Клиентела"],
}
VARIANTS = ["", " классика", " премиум", " лайт", " new", " эко", " плюс", " мини"]


@dataclass
class Catalog:
    """Products as parallel lists (index = position), with per-top-category index lists."""

    product_ids: list[int]
    price_kop: list[int]
    cost_kop: list[int]
    weighed: list[bool]
    popularity: list[float]
    by_top: list[list[int]]


def _round_price(value: float) -> int:
    # Shelf prices end in 9 (2 499, 349, 89 roubles): the way Russian retail prices look.
    if value >= 1000:
        return int(round(value / 100.0)) * 100 - 1
    if value >= 100:
        return int(round(value / 10.0)) * 10 - 1
    return max(int(round(value)), 9)


def create_catalog(rnd: random.Random) -> Catalog:
    """The category tree (with `path` set as `Category.save()` does) and about 300 products."""
    categories: list[Category] = []
    roots = Category.objects.bulk_create(
        Category(name=name, path=name) for name, *_ in TOP_CATEGORIES
    )
    children: list[tuple[int, str, Category]] = []
    for top, root in enumerate(roots):
        for sub in SUBCATEGORIES[top]:
            children.append((top, sub, Category(name=sub, parent=root, path=f"{root.path}/{sub}")))
    Category.objects.bulk_create(c for _, _, c in children)
    categories.extend(roots)

    products: list[Product] = []
    meta: list[tuple[int, bool, float]] = []
    for top, sub, category in children:
        prefix = TOP_CATEGORIES[top][1]
        margin = TOP_CATEGORIES[top][2]
        for kind, low, high in SUBCATEGORIES[top][sub]:
            for brand in rnd.sample(BRANDS[top], k=min(3, len(BRANDS[top]))):
                for variant in rnd.sample(VARIANTS, k=4):
                    price = _round_price(rnd.uniform(low, high))
                    own_margin = min(max(rnd.gauss(margin, 0.05), 0.05), 0.8)
                    cost_kop = int(round(price * 100 * (1 - own_margin)))
                    number = len(products) + 1
                    products.append(
                        Product(
                            sku=f"{prefix}-{number:05d}",
                            name=f"{kind} {brand}{variant}".strip(),
                            category=category,
                            price=Decimal(price),
                            cost=Decimal(cost_kop) / 100,
                        )
                    )
                    # Cheap goods sell more often; a random factor makes a few items hits.
                    popularity = (1.0 / (price**0.35)) * rnd.paretovariate(2.0)
                    meta.append((top, sub in WEIGHED, popularity))
    Product.objects.bulk_create(products)
    by_top: list[list[int]] = [[] for _ in TOP_CATEGORIES]
    for index, (top, _, _) in enumerate(meta):
        by_top[top].append(index)
    return Catalog(
        product_ids=[p.pk for p in products],
        price_kop=[int(p.price * 100) for p in products],
        cost_kop=[int(p.cost * 100) for p in products],
        weighed=[w for _, w, _ in meta],
        popularity=[pop for _, _, pop in meta],
        by_top=by_top,
    )


# (code, name, cost per customer in roubles, share of new customers)
ACQUISITION_CHANNELS = [
    ("walk-in", "Зашёл в магазин", 0, 0.38),
    ("instagram", "Реклама в Instagram", 650, 0.10),
    ("vk-ads", "Реклама ВКонтакте", 480, 0.14),
    ("referral", "Рекомендация друга", 300, 0.12),
    ("website", "Сайт магазина", 220, 0.14),
    ("marketplace", "Маркетплейс", 900, 0.07),
    ("outdoor", "Наружная реклама", 1100, 0.05),
]


def create_acquisition_channels() -> list[AcquisitionChannel]:
    return AcquisitionChannel.objects.bulk_create(
        AcquisitionChannel(code=code, name=name, acquisition_cost=Decimal(cost))
        for code, name, cost, _ in ACQUISITION_CHANNELS
    )


# (name, colour, share of customers carrying it)
TAGS = [
    ("Постоянный клиент", "#198754", 0.10),
    ("Многодетная семья", "#0d6efd", 0.03),
    ("Оптовик", "#6f42c1", 0.01),
    ("Жалоба", "#dc3545", 0.02),
    ("Блогер", "#fd7e14", 0.005),
    ("Сотрудник", "#6c757d", 0.01),
    ("Предпочитает звонки", "#20c997", 0.04),
]


def create_tags() -> list[Tag]:
    return Tag.objects.bulk_create(Tag(name=name, color=color) for name, color, _ in TAGS)


CLOTHING_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
FAVOURITE_BRANDS = ["Северянка", "Urban Line", "Натура Сибирика", "Xiaomi", "Поларис", "Шагом"]
CONTACT_TIMES = ["Утро", "День", "Вечер"]


def create_custom_fields() -> None:
    """Two categories of card fields: sizes (to offer what fits) and preferences."""
    sizes = CustomFieldCategory.objects.create(
        name="Размеры",
        purpose="Чтобы предлагать покупателю вещи и обувь его размера.",
        order=1,
    )
    prefs = CustomFieldCategory.objects.create(
        name="Предпочтения",
        purpose="Чтобы рассылки и звонки были о том, что покупателю интересно, и в удобное время.",
        order=2,
    )
    CustomField.objects.bulk_create(
        [
            CustomField(
                key="clothing_size",
                name="Размер одежды",
                type=CustomFieldType.CHOICE,
                choices=CLOTHING_SIZES,
                category=sizes,
                order=1,
            ),
            CustomField(
                key="shoe_size",
                name="Размер обуви",
                type=CustomFieldType.NUMBER,
                category=sizes,
                order=2,
                help_text="Российский размер, 34–47",
            ),
            CustomField(
                key="favourite_brand",
                name="Любимый бренд",
                type=CustomFieldType.CHOICE,
                choices=FAVOURITE_BRANDS,
                category=prefs,
                order=1,
            ),
            CustomField(
                key="contact_time",
                name="Удобное время для звонка",
                type=CustomFieldType.CHOICE,
                choices=CONTACT_TIMES,
                category=prefs,
                order=2,
            ),
        ]
    )
