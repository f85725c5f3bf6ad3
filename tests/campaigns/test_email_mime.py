"""`CampaignEmail` composes its MIME bytes itself; parsed by the stdlib they must say exactly
what Django's own `EmailMultiAlternatives.message()` says."""

import io
from email import message_from_bytes, policy
from email.header import decode_header
from email.utils import parsedate_to_datetime

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import BadHeaderError

from campaigns.channels import Outgoing, PermanentError
from campaigns.channels import email as email_channel
from campaigns.channels.email import CampaignEmail, EmailChannel

UNSUBSCRIBE = "https://crm.example.ru/u/MTIzNDU2:1vN9aX:" + "x" * 60 + "/"
HEADERS = {
    "Message-ID": "<clientele.7.123456@clientele.local>",
    "List-Unsubscribe": f"<{UNSUBSCRIBE}>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}
HTML = (
    "<p>Анна Сергеевна, ждём вас в «Тверской»!</p>\n"
    f'<p style="font-size:12px"><a href="{UNSUBSCRIBE}">Отписаться</a></p>\n'
)
TEXT = f"Анна Сергеевна, ждём вас в «Тверской»!\n\n--\nОтписаться: {UNSUBSCRIBE}\n"

CASES = {
    "russian": {
        "subject": "Весна в «Тверской», Анна Сергеевна! Скидки до 30% на всё, что цветёт",
        "body": TEXT,
        "html": HTML,
        "to": ["anna@mail.ru"],
    },
    "long ascii subject": {
        "subject": "Spring sale " * 12 + "=?not-an-encoded-word?= end",
        "body": "Hello\r\nworld\rold mac line\n",
        "html": "<p>Hello</p>",
        "to": ["john.smith+spring@example.com"],
    },
    "line longer than 998 bytes": {
        "subject": "Длинная строка",
        "body": "ы" * 700 + "\nконец\n",
        "html": "<p>" + "щ" * 1200 + "</p>",
        "to": ["anna@mail.ru"],
    },
    "idn address, text only": {
        "subject": "Привет",
        "body": "Только текст.\n",
        "html": "",
        "to": ["анна@пример.рф"],
    },
    "html only": {
        "subject": "Только HTML",
        "body": "",
        "html": "<p>Привет</p>",
        "to": ["a@b.ru"],
    },
    "dots at line starts": {
        "subject": "Dots",
        "body": ".\n..\n. leading dot\n",
        "html": "<p>\n.\n</p>",
        "to": ["a@b.ru"],
    },
}


def build(cls, case):
    message = cls(
        subject=case["subject"],
        body=case["body"],
        to=case["to"],
        headers=dict(HEADERS),
    )
    if case["html"]:
        message.attach_alternative(case["html"], "text/html")
    return message


def parsed(message):
    data = message.message().as_bytes(linesep="\r\n")
    return data, message_from_bytes(data, policy=policy.default)


@pytest.mark.parametrize("name", list(CASES))
def test_composed_message_says_what_djangos_says(name, settings):
    settings.DEFAULT_FROM_EMAIL = "Магазин «Ромашка» <shop@example.ru>"
    case = CASES[name]
    ours_bytes, ours = parsed(build(CampaignEmail, case))
    _, django = parsed(build(EmailMultiAlternatives, case))

    for header in ("Subject", "From", "To", "Message-ID", "MIME-Version", *HEADERS):
        # Django's generator folds right after "Subject:"; the parser keeps that space.
        assert str(ours[header]).strip() == str(django[header]).strip(), header
    assert str(ours["Subject"]) == case["subject"]
    apart = parsedate_to_datetime(ours["Date"]) - parsedate_to_datetime(django["Date"])
    assert abs(apart.total_seconds()) < 5
    assert ours.get_content_type() == django.get_content_type()
    assert [p.get_content_type() for p in ours.walk()] == [
        p.get_content_type() for p in django.walk()
    ]
    for kind in ("plain", "html"):
        theirs = django.get_body((kind,))
        mine = ours.get_body((kind,))
        assert (mine is None) == (theirs is None)
        if theirs is not None:
            assert mine.get_content() == theirs.get_content()
            assert mine.get_content_charset() == "utf-8"
    assert all(not part.defects for part in ours.walk())

    lines = ours_bytes.split(b"\r\n")
    assert max(map(len, lines)) <= 998
    assert all(len(line) <= 76 for line in lines if b"=?utf-8?" in line)
    assert b"\n" not in ours_bytes.replace(b"\r\n", b"")


def test_encoded_words_never_split_a_character():
    subject = "Ёлка 🎄 и подарки 🎁 " * 8
    value = email_channel.encode_header("Subject", subject)
    words = [line.strip() for line in value.split("\r\n")]
    assert len(words) > 3
    for word in words:
        [(raw, charset)] = decode_header(word)
        raw.decode(charset)  # each word alone is whole UTF-8
    assert "".join(raw.decode() for raw, _ in decode_header(value)) == subject


def test_a_body_containing_the_boundary_gets_another_boundary():
    case = {**CASES["russian"], "body": f"--{email_channel._boundary}\nстрока\n"}
    _, ours = parsed(build(CampaignEmail, case))
    assert ours.get_body(("plain",)).get_content() == case["body"].replace("\n", "\r\n")
    assert ours.get_boundary() != email_channel._boundary


def test_header_injection_is_refused_before_anything_is_sent(settings, smtp):
    with pytest.raises(BadHeaderError):
        build(CampaignEmail, {**CASES["russian"], "subject": "Hi\r\nBcc: x@evil.test"}).message()
    channel = EmailChannel("email")
    channel.open()
    try:
        with pytest.raises(PermanentError):
            channel.send(
                Outgoing(
                    channel="email",
                    to="anna@mail.ru",
                    subject="ok",
                    text="x",
                    headers={"X-Campaign": "a\nBcc: x@evil.test"},
                    idempotency_key="<k@clientele.local>",
                )
            )
    finally:
        channel.close()
    assert smtp.messages == []


def test_idn_recipient_reaches_the_smtp_server_in_punycode(settings, smtp):
    channel = EmailChannel("email")
    with channel:
        channel.send(
            Outgoing(
                channel="email",
                to="анна@пример.рф",
                subject="Привет",
                text="текст",
                html="<p>текст</p>",
                idempotency_key="<k1@clientele.local>",
            )
        )
    [received] = smtp.messages
    assert received["To"] == "анна@xn--e1afmkfd.xn--p1ai"
    assert received.get_body(("html",)).get_content() == "<p>текст</p>"


def test_locmem_backend_gets_the_campaign_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with EmailChannel("email") as channel:
        channel.send(
            Outgoing(
                channel="email",
                to="anna@mail.ru",
                subject="Весна",
                text="Привет",
                html="<p>Привет</p>",
                idempotency_key="<k2@clientele.local>",
                unsubscribe_url=UNSUBSCRIBE,
            )
        )
    [sent] = mail.outbox
    assert sent.subject == "Весна"
    assert isinstance(sent, CampaignEmail)
    parsed_message = message_from_bytes(sent.message().as_bytes(), policy=policy.default)
    assert parsed_message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert parsed_message.get_body(("plain",)).get_content() == "Привет"


def test_console_backend_prints_a_readable_message():
    stream = io.StringIO()
    connection = get_connection("django.core.mail.backends.console.EmailBackend", stream=stream)
    CampaignEmail(
        subject="Весна", body="Привет, Анна", to=["anna@mail.ru"], connection=connection
    ).send()
    output = stream.getvalue()
    assert "Привет, Анна" in output
    assert "Subject: =?utf-8?b?" in output


def test_attachments_fall_back_to_djangos_message():
    message = build(CampaignEmail, CASES["russian"])
    message.attach("price.txt", "цены", "text/plain")
    assert not isinstance(message.message(), email_channel.ComposedMessage)
    _, django_form = parsed(message)
    assert django_form.get_content_type() == "multipart/mixed"
