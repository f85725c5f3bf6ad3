"""Safe personalisation of message templates.

Templates use Django template syntax restricted to variables, filters and `if`/`firstof`; the
context holds only plain strings (never model objects), so a template cannot reach the database
or other customers. Email HTML is autoescaped; SMS and messenger text is plain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.template import Context, Engine, TemplateSyntaxError
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape, strip_tags
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.channels import Outgoing

VARIABLES = (
    "first_name",
    "patronymic",
    "surname",
    "name",
    "store",
    "store_city",
    "favourite_category",
    "offer_category",
    "birthday",
    "unsubscribe_url",
)
ALLOWED_TAGS = {"if", "elif", "else", "endif", "firstof"}
TAG_RE = re.compile(r"{%-?\s*(\w+)")
UNSUBSCRIBE_SALT = "campaigns.unsubscribe"

_html_engine = Engine(autoescape=True, libraries={})
_text_engine = Engine(autoescape=False, libraries={})


@lru_cache(maxsize=64)
def _compiled(source: str, html: bool):
    # A campaign renders the same few sources thousands of times: parse each once.
    return (_html_engine if html else _text_engine).from_string(source)


def check_template(source: str) -> list[str]:
    """Problems of a template source; empty when it renders safely."""
    bad = sorted({tag for tag in TAG_RE.findall(source or "") if tag not in ALLOWED_TAGS})
    if bad:
        return [str(_("Tags not allowed here: %(tags)s.") % {"tags": ", ".join(bad)})]
    try:
        _text_engine.from_string(source or "")
    except TemplateSyntaxError as error:
        return [str(error)]
    return []


def unsubscribe_token(message_id: int) -> str:
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(message_id))


def unsubscribe_message_id(token: str) -> int:
    """The message id a token was made for; `signing.BadSignature` when forged."""
    return int(signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token))


def unsubscribe_url(message_id: int) -> str:
    # Reversed once per call site would be fine, but a campaign renders thousands per second.
    path = reverse("campaigns_public:unsubscribe", args=["TOKEN"])
    return f"{settings.CLIENTELE_SITE_URL}{path}".replace("TOKEN", unsubscribe_token(message_id))


@dataclass
class Recipient:
    """What a message may say about its customer: plain values only."""

    message_id: int
    customer_id: int
    channel: str
    address: str
    first_name: str = ""
    patronymic: str = ""
    surname: str = ""
    store: str = ""
    store_city: str = ""
    store_timezone: str = ""
    favourite_category: str = ""
    offer_category: str = ""
    birthday: str = ""

    def context(self, unsubscribe: str) -> dict[str, str]:
        name = " ".join(p for p in (self.first_name, self.patronymic) if p) or self.surname
        return {
            "first_name": self.first_name,
            "patronymic": self.patronymic,
            "surname": self.surname,
            "name": name,
            "store": self.store,
            "store_city": self.store_city,
            "favourite_category": self.favourite_category,
            "offer_category": self.offer_category or self.favourite_category,
            "birthday": self.birthday,
            "unsubscribe_url": unsubscribe,
        }


def render(campaign, recipient: Recipient, *, idempotency_key: str, unsubscribe: str) -> Outgoing:
    """The message `campaign` sends to `recipient`, with its unsubscribe link or opt-out text."""
    ctx = recipient.context(unsubscribe)
    with translation.override(settings.LANGUAGE_CODE):
        if campaign.channel == "email":
            html = _compiled(campaign.body_html, True).render(Context(ctx))
            subject = _compiled(campaign.subject, False).render(Context(ctx))
            footer = gettext("To stop receiving these emails, unsubscribe: %(url)s") % {
                "url": unsubscribe
            }
            html_footer = (
                f'<p style="font-size:12px;color:#6c757d"><a href="{escape(unsubscribe)}">'
                f"{escape(gettext('Unsubscribe'))}</a></p>"
            )
            return Outgoing(
                channel="email",
                to=recipient.address,
                subject=" ".join(subject.split())[:200],
                text=f"{strip_tags(html).strip()}\n\n--\n{footer}\n",
                html=f"{html}\n{html_footer}",
                idempotency_key=idempotency_key,
                unsubscribe_url=unsubscribe,
            )
        text = _compiled(campaign.body_text, False).render(Context(ctx)).strip()
        # Every SMS carries the way out, whatever the template says.
        opt_out = gettext("Unsubscribe: %(url)s") % {"url": unsubscribe}
        return Outgoing(
            channel=campaign.channel,
            to=recipient.address,
            text=f"{text}\n{opt_out}",
            idempotency_key=idempotency_key,
            unsubscribe_url=unsubscribe,
        )
