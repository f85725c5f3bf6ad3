"""Who the demo customers are: names, birthdays, phones, cards, e-mails, consent and card fields.

Numbers that drive the purchase simulation (gender, home store, when a customer arrives and
leaves, how often they buy) are numpy arrays; the text of each card is built in one Python pass.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from dataclasses import dataclass, field

import numpy as np

from customers.names import (
    EMAIL_DOMAINS,
    FEMALE_NAMES,
    MALE_NAMES,
    MOBILE_CODES,
    SURNAMES,
    female_surname,
    translit,
)

from .catalog import (
    ACQUISITION_CHANNELS,
    CLOTHING_SIZES,
    CONTACT_TIMES,
    FAVOURITE_BRANDS,
    TAGS,
    StoreSpec,
)

FEMALE, MALE = 0, 1
LEAD_SHARE = 0.08
# Customers whose card predates the simulated window (they buy from its first day).
PRE_WINDOW_SHARE = 0.40
CHURN_SHARE = 0.35
# BG/NBD-like heterogeneity: purchase days per day ~ Gamma(shape, rate in days), the chance of
# leaving after a purchase ~ Beta(a, b). About eight purchase days a year on average, one in ten
# customers gone after each purchase.
RATE_SHAPE, RATE_SCALE_DAYS = 0.9, 40.0
LEAVE_A, LEAVE_B = 0.7, 5.5

POSTAL_PREFIX = {
    "Москва": "1",
    "Санкт-Петербург": "19",
    "Казань": "420",
    "Екатеринбург": "620",
    "Новосибирск": "630",
    "Нижний Новгород": "603",
    "Самара": "443",
    "Краснодар": "350",
    "Ростов-на-Дону": "344",
    "Омск": "644",
    "Красноярск": "660",
    "Владивосток": "690",
}
STREETS = [
    "ул. Ленина",
    "ул. Гагарина",
    "ул. Советская",
    "ул. Мира",
    "пр. Победы",
    "ул. Садовая",
    "ул. Пушкина",
    "ул. Молодёжная",
    "ул. Лесная",
    "ул. Школьная",
]
WORKPLACES = [
    ("ПАО Сбербанк", "операционист"),
    ("Школа № 12", "учитель"),
    ("Городская больница № 3", "врач"),
    ("ООО «Ромашка»", "бухгалтер"),
    ("ООО «ТехноСервис»", "инженер"),
    ("ИП", "предприниматель"),
    ("АО «РЖД»", "диспетчер"),
    ("ООО «Яндекс»", "программист"),
    ("Детский сад № 5", "воспитатель"),
    ("ООО «СтройИнвест»", "менеджер по продажам"),
]
INTERESTS = [
    "йога, путешествия",
    "рыбалка, футбол",
    "кулинария",
    "театр, выставки",
    "бег, велосипед",
    "вязание, сад",
    "гаджеты, компьютерные игры",
    "фотография",
]
NOTES = [
    "Просит не звонить после 20:00.",
    "Предпочитает оплату картой.",
    "Покупает подарки коллегам к праздникам.",
    "Интересуется новинками коллекции.",
    "Был недоволен сроком доставки, вопрос решён.",
]
MARITAL = ["single", "married", "married", "married", "divorced", "widowed"]


@dataclass
class People:
    """The customers to create, index i becoming id `first_id + i`."""

    count: int
    gender: np.ndarray  # FEMALE / MALE
    home_store: np.ndarray  # index into the store list
    is_lead: np.ndarray
    pre_window: np.ndarray  # card issued before the simulated window
    first_day: np.ndarray  # window day of the first purchase (or of registration for leads)
    end_day: np.ndarray  # exclusive: no purchases from this window day on
    rate: np.ndarray  # purchase days per (average) day while active: Gamma across customers
    leave: np.ndarray  # chance of leaving for good after each repeat purchase: Beta
    basket: np.ndarray  # Poisson mean of extra lines per receipt
    price_level: np.ndarray  # how far up a category's price range the customer buys
    rows: list[dict] = field(default_factory=list)
    phones: list[tuple[int, str, str, bool]] = field(
        default_factory=list
    )  # (i, number, kind, primary)
    tags: list[tuple[int, int]] = field(default_factory=list)  # (i, tag index)
    children: list[tuple[int, str, dt.date]] = field(default_factory=list)


_DOMAINS = [domain for domain, _ in EMAIL_DOMAINS]
_DOMAIN_CUM = list(itertools.accumulate(share for _, share in EMAIL_DOMAINS))


def _ean13(body12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def plan_people(
    *, rng: np.random.Generator, count: int, stores: list[StoreSpec], days: int
) -> People:
    """Draw the numeric profile of every customer over a window of `days` days."""
    weights = np.array([s.weight for s in stores], dtype=float)
    home_store = rng.choice(len(stores), size=count, p=weights / weights.sum())
    gender = (rng.random(count) < 0.38).astype(np.int8)  # loyalty cards skew female
    is_lead = rng.random(count) < LEAD_SHARE
    pre_window = (rng.random(count) < PRE_WINDOW_SHARE) & ~is_lead
    # New customers arrive a little faster as the chain grows.
    arrival = (days * np.sqrt(rng.random(count))).astype(np.int64).clip(0, days - 1)
    first_day = np.where(pre_window, 0, arrival)
    # Leads were met recently: within the last two years, never before the window.
    lead_day = rng.integers(max(0, days - 730), days, size=count)
    first_day = np.where(is_lead, lead_day, first_day)
    churn = rng.random(count) < CHURN_SHARE
    stay = (30 + rng.exponential(330, size=count)).astype(np.int64)
    end_day = np.where(churn, np.minimum(first_day + stay, days), days)
    end_day = np.maximum(end_day, first_day + 1)
    # Buying as BG/NBD describes it (Fader, Hardie & Lee, 2005), so the chain's own CLV fit has
    # something real to find: a Gamma spread of purchase rates (a long Pareto head), and a Beta
    # chance of leaving after each purchase. Spend per visit varies by customer too (basket
    # size and price level), as Gamma-Gamma assumes. The churn drawn above is replaced by the
    # simulated dropout in `purchases.simulate`.
    rate = rng.gamma(RATE_SHAPE, 1 / RATE_SCALE_DAYS, size=count)
    leave = rng.beta(LEAVE_A, LEAVE_B, size=count)
    appetite = rng.normal(size=count)
    basket = np.exp(np.log(0.7) + 0.35 * appetite + 0.25 * rng.normal(size=count))
    price_level = np.exp(0.6 * rng.normal(size=count))
    return People(
        count=count,
        gender=gender,
        home_store=home_store,
        is_lead=is_lead,
        pre_window=pre_window,
        first_day=first_day,
        end_day=end_day,
        rate=rate,
        leave=leave,
        basket=basket,
        price_level=price_level,
    )


def _phone_numbers(rng: np.random.Generator, count: int) -> list[str]:
    # Distinct draws from (operator code, 7-digit subscriber) space: unique by construction.
    picks = rng.choice(len(MOBILE_CODES) * 10**7, size=count, replace=False)
    codes = np.array(MOBILE_CODES)[picks // 10**7]
    return [f"+7{c}{s:07d}" for c, s in zip(codes.tolist(), (picks % 10**7).tolist(), strict=True)]


def _card_numbers(rng: np.random.Generator, count: int) -> list[str]:
    # In-store EAN-13 codes start with 2; distinct draws keep them unique.
    picks = rng.choice(10**9, size=count, replace=False)
    return [_ean13(f"277{p:09d}") for p in picks.tolist()]


def _email(rnd: random.Random, first: str, surname: str, birth: dt.date | None) -> str:
    first_l, last_l = translit(first), translit(surname)
    style = rnd.randrange(4)
    if style == 0:
        local = f"{first_l}.{last_l}"
    elif style == 1:
        year = birth.year % 100 if birth else rnd.randrange(100)
        local = f"{last_l}{year:02d}"
    elif style == 2:
        local = f"{first_l[0]}{last_l}{rnd.randrange(1, 999)}"
    else:
        local = f"{first_l}_{last_l[:4]}{rnd.randrange(10, 99)}"
    return f"{local}@{rnd.choices(_DOMAINS, cum_weights=_DOMAIN_CUM)[0]}"


def describe_people(
    *,
    people: People,
    rng: np.random.Generator,
    rnd: random.Random,
    stores: list[StoreSpec],
    today: dt.date,
) -> None:
    """Fill in the text of every card (everything that does not depend on purchases)."""
    n = people.count
    second_phone = rng.random(n) < 0.12
    numbers = _phone_numbers(rng, n + int(second_phone.sum()))
    has_card = (rng.random(n) < 0.88) & ~people.is_lead
    cards = iter(_card_numbers(rng, int(has_card.sum())))
    spare_numbers = iter(numbers[n:])
    male_names = list(MALE_NAMES)
    surname_cum = list(itertools.accumulate(1.0 / (rank + 8) for rank in range(len(SURNAMES))))
    child_names = FEMALE_NAMES + male_names
    channel_indexes = list(range(len(ACQUISITION_CHANNELS)))
    channel_shares = [share for *_, share in ACQUISITION_CHANNELS]
    emails_seen: set[str] = set()
    for i in range(n):
        female = people.gender[i] == FEMALE
        first = rnd.choice(FEMALE_NAMES) if female else rnd.choice(male_names)
        father = rnd.choice(male_names)
        patronymic = MALE_NAMES[father][1 if female else 0] if rnd.random() > 0.04 else ""
        surname = rnd.choices(SURNAMES, cum_weights=surname_cum)[0]
        if female:
            surname = female_surname(surname)
        birth = None
        if rnd.random() < 0.88:
            age_days = int(365.25 * min(18 + rnd.gammavariate(3.0, 7.0), 85))
            birth = today - dt.timedelta(days=age_days + rnd.randrange(365))
        store = stores[int(people.home_store[i])]
        email = ""
        if rnd.random() < (0.45 if people.is_lead[i] else 0.62):
            email = _email(rnd, first, surname, birth)
            while email in emails_seen:
                local, domain = email.split("@")
                email = f"{local}{rnd.randrange(10)}@{domain}"
            emails_seen.add(email)
        row = {
            "surname": surname,
            "first_name": first,
            "patronymic": patronymic,
            "gender": "f" if female else "m",
            "birth_date": birth,
            "phone": numbers[i],
            "email": email,
            "card_number": next(cards) if has_card[i] else None,
            "city": store.city,
            "postal_code": "",
            "address": "",
            "workplace": "",
            "position": "",
            "marital_status": "",
            "children_count": None,
            "interests": "",
            "notes": "",
            "custom_fields": {},
            "acquisition_channel": None,
            "consent": {},
            "withdrawn_email": False,
        }
        if rnd.random() < 0.35:
            prefix = POSTAL_PREFIX.get(store.city, "1")
            row["postal_code"] = prefix + "".join(
                str(rnd.randrange(10)) for _ in range(6 - len(prefix))
            )
            row["address"] = (
                f"{rnd.choice(STREETS)}, д. {rnd.randrange(1, 120)}, кв. {rnd.randrange(1, 300)}"
            )
        if rnd.random() < 0.2:
            row["workplace"], row["position"] = rnd.choice(WORKPLACES)
        if rnd.random() < 0.5:
            row["marital_status"] = rnd.choice(MARITAL)
        if rnd.random() < 0.4:
            row["children_count"] = rnd.choices([0, 1, 2, 3], weights=[4, 4, 3, 1])[0]
            for _ in range(row["children_count"]):
                if rnd.random() < 0.5:
                    child_birth = today - dt.timedelta(days=rnd.randrange(365, 17 * 365))
                    name = rnd.choice(child_names)
                    people.children.append((i, name, child_birth))
        if rnd.random() < 0.15:
            row["interests"] = rnd.choice(INTERESTS)
        if rnd.random() < 0.05:
            row["notes"] = rnd.choice(NOTES)
        custom: dict[str, str] = {}
        if rnd.random() < 0.3:
            custom["clothing_size"] = rnd.choice(
                CLOTHING_SIZES[:5] if female else CLOTHING_SIZES[2:]
            )
            custom["shoe_size"] = str(rnd.randint(35, 40) if female else rnd.randint(40, 46))
        if rnd.random() < 0.2:
            custom["favourite_brand"] = rnd.choice(FAVOURITE_BRANDS)
        if rnd.random() < 0.1:
            custom["contact_time"] = rnd.choice(CONTACT_TIMES)
        row["custom_fields"] = custom
        if rnd.random() < 0.85:
            row["acquisition_channel"] = rnd.choices(channel_indexes, weights=channel_shares)[0]
        consent = {
            "sms": rnd.random() < 0.7,
            "email": bool(email) and rnd.random() < 0.65,
            "messenger": rnd.random() < 0.3,
            "phone": rnd.random() < 0.4,
        }
        row["consent"] = consent
        # Some customers unsubscribed later: the history shows the grant and the withdrawal.
        row["withdrawn_email"] = consent["email"] and rnd.random() < 0.05
        row["do_not_contact"] = rnd.random() < 0.01
        people.rows.append(row)
        people.phones.append((i, numbers[i], "mobile", True))
        if second_phone[i]:
            kind = rnd.choice(["mobile", "mobile", "work"])
            people.phones.append((i, next(spare_numbers), kind, False))
        for tag_index, (_, _, share) in enumerate(TAGS):
            if rnd.random() < share:
                people.tags.append((i, tag_index))
    _register_twice(people, random.Random(hash(rnd.getstate())))  # noqa: S311 - demo data


TWIN_SHARE = 0.012


def _register_twice(people: People, rnd: random.Random) -> None:
    """Some people registered a second time, as happens in every chain: at another till with
    another phone, the name typed with е for ё, the e-mail in capitals. The duplicates page has
    pairs to show from the first start. A random generator of its own (seeded from the main
    one's state, which it leaves alone), so the rest of the demo stays as it was."""
    rows = people.rows
    twins: set[int] = set()
    for i in range(40, len(rows)):
        if rnd.random() >= TWIN_SHARE:
            continue
        same_gender = [
            j
            for j in range(max(0, i - 400), i)
            if j not in twins and people.gender[j] == people.gender[i] and rows[j]["birth_date"]
        ]
        if not same_gender:
            continue
        original = rows[rnd.choice(same_gender)]
        twin = rows[i]
        twins.add(i)
        for name in ("surname", "first_name", "patronymic", "birth_date"):
            twin[name] = original[name]
        if "ё" in twin["surname"] and rnd.random() < 0.5:
            twin["surname"] = twin["surname"].replace("ё", "е")
        if original["email"] and rnd.random() < 0.4:
            twin["email"] = original["email"].upper()


def custom_fields_json(values: dict[str, str]) -> str:
    return json.dumps(values, ensure_ascii=False, sort_keys=True)
