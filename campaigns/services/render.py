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
from django.urls import get_urlconf, reverse
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


@lru_cache(maxsize=8)
def _unsubscribe_pattern(site_url: str, urlconf: str) -> tuple[str, str]:
    # reverse() costs ~0.1 ms, as much as the rest of a message's rendering: once per URLconf.
    path = reverse("campaigns_public:unsubscribe", args=["TOKEN"], urlconf=urlconf)
    prefix, _, suffix = path.partition("TOKEN")
    return f"{site_url}{prefix}", suffix


def warm_up() -> None:
    """Load the URLconf now (it imports every view) rather than on a worker's first message."""
    _unsubscribe_pattern(settings.CLIENTELE_SITE_URL, _urlconf())


def _urlconf() -> str:
    return get_urlconf() or settings.ROOT_URLCONF


def unsubscribe_url(message_id: int) -> str:
    prefix, suffix = _unsubscribe_pattern(settings.CLIENTELE_SITE_URL, _urlconf())
    return f"{prefix}{unsubscribe_token(message_id)}{suffix}"


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
    points_balance: str = ""  # available bonus points, e.g. "1250.00"

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
            "points_balance": self.points_balance,
            "unsubscribe_url": unsubscribe,
        }


class Renderer:
    """One campaign's templates, footers and unsubscribe URL pattern, prepared once.

    A send task renders hundreds of messages of the same campaign per batch; what does not
    depend on the recipient (compiled templates, translated footers, the reversed URL) is
    prepared here once instead of per message.
    """

    def __init__(self, campaign) -> None:
        self.channel = campaign.channel
        self.language = settings.LANGUAGE_CODE
        if self.channel == "email":
            self.subject = _compiled(campaign.subject, False)
            self.html = _compiled(campaign.body_html, True)
        else:
            self.text = _compiled(campaign.body_text, False)
        with translation.override(self.language):
            self.email_footer = gettext("To stop receiving these emails, unsubscribe: %(url)s")
            self.unsubscribe_label = escape(gettext("Unsubscribe"))
            self.opt_out = gettext("Unsubscribe: %(url)s")
        self.url_prefix, self.url_suffix = _unsubscribe_pattern(
            settings.CLIENTELE_SITE_URL, _urlconf()
        )

    def unsubscribe_url(self, message_id: int) -> str:
        return f"{self.url_prefix}{unsubscribe_token(message_id)}{self.url_suffix}"

    def render(
        self, recipient: Recipient, *, idempotency_key: str, unsubscribe: str | None = None
    ) -> Outgoing:
        """The message to `recipient`, with its unsubscribe link (its own unless given)."""
        if unsubscribe is None:
            unsubscribe = self.unsubscribe_url(recipient.message_id)
        ctx = recipient.context(unsubscribe)
        with translation.override(self.language):
            if self.channel == "email":
                html = self.html.render(Context(ctx))
                subject = self.subject.render(Context(ctx))
                footer = self.email_footer % {"url": unsubscribe}
                html_footer = (
                    f'<p style="font-size:12px;color:#6c757d"><a href="{escape(unsubscribe)}">'
                    f"{self.unsubscribe_label}</a></p>"
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
            text = self.text.render(Context(ctx)).strip()
        # Every SMS carries the way out, whatever the template says.
        return Outgoing(
            channel=self.channel,
            to=recipient.address,
            text=f"{text}\n{self.opt_out % {'url': unsubscribe}}",
            idempotency_key=idempotency_key,
            unsubscribe_url=unsubscribe,
        )


def render(campaign, recipient: Recipient, *, idempotency_key: str, unsubscribe: str) -> Outgoing:
    """The message `campaign` sends to `recipient`, with its unsubscribe link or opt-out text."""
    return Renderer(campaign).render(
        recipient, idempotency_key=idempotency_key, unsubscribe=unsubscribe
    )
