"""The contact log of the demo base: calls, visits and messages with agreements and follow-ups.

Follow-ups are placed around the anchored "today" so the demo always has some due today and
some overdue, whatever day it is seeded on.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

# (topic, channel, direction, outcome, agreement, next step or "")
SCRIPTS = [
    (
        "Приглашение на закрытую распродажу",
        "phone",
        "out",
        "Поблагодарила за приглашение, придёт в субботу.",
        "Отложим для неё пальто 46 размера до субботы.",
        "Напомнить о распродаже накануне",
    ),
    (
        "Поздравление с днём рождения",
        "sms",
        "out",
        "Поздравление доставлено.",
        "",
        "",
    ),
    (
        "Уточнение размера заказа",
        "phone",
        "in",
        "Нужен размер обуви на полразмера больше.",
        "Привезём нужный размер из другого магазина.",
        "Позвонить, когда товар придёт в магазин",
    ),
    (
        "Жалоба на качество товара",
        "visit",
        "in",
        "Шов разошёлся после второй носки, товар принят на проверку.",
        "Заменим товар или вернём деньги по результату проверки.",
        "Сообщить результат проверки качества",
    ),
    (
        "Предзаказ новой коллекции",
        "messenger",
        "in",
        "Спрашивает о поступлении весенней коллекции.",
        "Сообщим, как только коллекция поступит.",
        "Отправить фото новой коллекции",
    ),
    (
        "Вопрос о наличии товара",
        "social",
        "in",
        "Интересовался наличием смартфона в магазине.",
        "Забронировали товар на 3 дня.",
        "Проверить, забрал ли бронь",
    ),
    (
        "Напоминание о бонусах",
        "email",
        "out",
        "Письмо о сгорающих бонусах открыто.",
        "",
        "",
    ),
    (
        "Консультация по уходу за кожей",
        "visit",
        "in",
        "Подобрали крем и сыворотку, купила пробники.",
        "Через две недели расскажет, подошло ли средство.",
        "Узнать, подошло ли средство",
    ),
    (
        "Возврат покупки",
        "visit",
        "in",
        "Оформлен возврат, деньги вернутся на карту.",
        "",
        "",
    ),
    (
        "Опрос удовлетворённости",
        "phone",
        "out",
        "Оценка 9 из 10, пожелание — больше размеров.",
        "",
        "",
    ),
]
LEAD_SCRIPTS = [
    (
        "Заявка с сайта",
        "phone",
        "out",
        "Интересуется подарочными картами, пока выбирает.",
        "Пришлём каталог подарочных наборов.",
        "Отправить каталог и перезвонить",
    ),
    (
        "Вопрос в соцсети",
        "social",
        "in",
        "Спросила про доставку, пока не решила с покупкой.",
        "Сообщим о скидках на доставку.",
        "Написать о бесплатной доставке",
    ),
]
VISIT_CHANNELS = {"visit"}


@dataclass
class ContactRow:
    customer: int  # customer index
    staff: int | None  # index into the staff list
    at: dt.datetime
    channel: str
    direction: str
    topic: str
    outcome: str
    agreement: str
    next_step: str
    due_date: dt.date | None
    done_at: dt.datetime | None


def plan_contacts(
    *,
    rnd: random.Random,
    is_lead: list[bool],
    registered: list[dt.datetime],
    in_first_store: list[bool],
    staff_count: int,
    today: dt.date,
    now: dt.datetime,
) -> list[ContactRow]:
    """Contacts for every lead and for about one customer in eight.

    `staff_count` is 0 without demo users, else 4 (admin, marketer, manager, associate): the
    first store's own staff talk to its customers; the others are the chain's call centre.
    """
    rows: list[ContactRow] = []
    for i, lead in enumerate(is_lead):
        if lead:
            count = rnd.randint(1, 2)
            scripts = LEAD_SCRIPTS
        elif rnd.random() < 0.12:
            count = rnd.randint(1, 3)
            scripts = SCRIPTS
        else:
            continue
        start = registered[i]
        span = max((now - start).total_seconds(), 3600.0)
        for _ in range(count):
            topic, channel, direction, outcome, agreement, next_step = rnd.choice(scripts)
            # Most contacts are recent: the log is a working tool, not an archive.
            at = start + dt.timedelta(seconds=span * (1 - rnd.random() ** 0.5 * 0.999))
            at = min(at, now - dt.timedelta(minutes=5)).replace(microsecond=0)
            staff = None
            if staff_count:
                staff = rnd.choice([2, 3]) if in_first_store[i] else rnd.choice([0, 1])
            due = done = None
            if next_step:
                due = at.date() + dt.timedelta(days=rnd.randint(1, 14))
                if due < today and rnd.random() < 0.75:
                    done = min(
                        dt.datetime.combine(due, dt.time(15), tzinfo=dt.UTC),
                        now - dt.timedelta(minutes=1),
                    )
            rows.append(
                ContactRow(
                    customer=i,
                    staff=staff,
                    at=at,
                    channel=channel,
                    direction=direction,
                    topic=topic,
                    outcome=outcome,
                    agreement=agreement,
                    next_step=next_step,
                    due_date=due,
                    done_at=done,
                )
            )
    _ensure_due_today(rnd, rows, today, now)
    return rows


def _ensure_due_today(
    rnd: random.Random, rows: list[ContactRow], today: dt.date, now: dt.datetime
) -> None:
    """Make a few open follow-ups due today and a few overdue, so the worklist is never empty."""
    with_steps = [row for row in rows if row.next_step]
    if not with_steps:
        return
    picks = rnd.sample(with_steps, k=min(len(with_steps), max(3, len(with_steps) // 50)))
    for n, row in enumerate(picks):
        row.due_date = today if n % 2 == 0 else today - dt.timedelta(days=rnd.randint(1, 5))
        row.at = min(
            dt.datetime.combine(row.due_date, dt.time(9), tzinfo=dt.UTC)
            - dt.timedelta(days=rnd.randint(1, 7), minutes=rnd.randint(0, 480)),
            now - dt.timedelta(minutes=5),
        )
        row.done_at = None
