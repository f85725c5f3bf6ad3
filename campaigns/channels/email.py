"""Email through Django's configured mail backend (SMTP in production).

A campaign sends thousands of near-identical messages. Django's `EmailMultiAlternatives`
builds each one as a tree of stdlib `email` objects and flattens it with the `Generator`, whose
header folding (`email.header.Header`) and per-message boundary search cost about a millisecond
per message, more than the SMTP transaction itself. `CampaignEmail` is an
`EmailMultiAlternatives` (same constructor, same attributes, sent by the same backends) whose
`message()` writes the same MIME structure straight to bytes:

- headers in Django's order (Content-Type, MIME-Version, Subject, From, To, Date, Message-ID,
  then the extra headers); non-ASCII values as RFC 2047 base64 encoded-words of at most 76
  characters per line, split between whole UTF-8 characters; long ASCII values folded at
  spaces; From via Django's own `sanitize_address` (once per sender, it is constant);
- bodies as Django sends them: UTF-8, `8bit` with CRLF line ends, or base64 when a line is
  longer than RFC 5322's 998 bytes (Django uses quoted-printable there; both decode the same);
- a boundary chosen once per process (and a fresh one for a message that contains it).

With Django's SMTP backend, plain envelope addresses are handed over as ("", address) pairs,
which its `sanitize_address` turns into the same MAIL FROM / RCPT TO without running the full
RFC 5322 parser again for every message (see `_envelope_sender`, `CampaignEmail.recipients`).

Anything it does not cover (attachments, Cc/Reply-To, another charset, more alternatives) falls
back to Django's own `message()`. `tests/campaigns/test_email_mime.py` parses both with the
stdlib parser and compares them.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import smtplib
import time
from email import message_from_bytes
from email.utils import formatdate, make_msgid, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import BadHeaderError, forbid_multi_line_headers, sanitize_address
from django.core.mail.utils import DNS_NAME

from . import ChannelBackend, Outgoing, PermanentError, TransientError

log = logging.getLogger(__name__)

LINE_LIMIT = 998  # RFC 5322 hard limit on a line, CRLF excluded
FOLD_AT = 78  # RFC 5322's recommended line length
ENCODED_LINE = 76  # RFC 2047: a line with encoded-words is at most 76 characters
# A plain dot-atom address needs no quoting or encoding; anything else goes through Django.
PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\Z"
)
FOLD_POINT = re.compile(r"(?<=\S) (?=\S)")


def _new_boundary() -> str:
    # Like the stdlib's, but random: it is reused for every message of this process.
    return f"==============={secrets.randbelow(10**19):019d}=="


_boundary = _new_boundary()
_from_cache: dict[str, str] = {}
_envelope_cache: dict[str, str] = {}
_date_cache: list = [None, ""]


def encode_header(name: str, value: str) -> str:
    """`value` ready to follow ``name: `` on the wire (folded with CRLF, RFC 2047 if needed)."""
    value = str(value)
    if "\n" in value or "\r" in value:
        raise BadHeaderError(f"Header values can't contain newlines (got {value!r} for {name!r})")
    if value.isascii() and "=?" not in value:
        return _fold_ascii(name, value)
    return _encoded_words(name, value)


def _fold_ascii(name: str, value: str) -> str:
    if len(name) + 2 + len(value) <= FOLD_AT:
        return value
    lines, current = [], len(name) + 2
    line: list[str] = []
    for word in FOLD_POINT.split(value):
        if line and current + 1 + len(word) > FOLD_AT:
            lines.append(" ".join(line))
            line, current = [], 0
        current += len(word) + (1 if line else 0)
        line.append(word)
    lines.append(" ".join(line))
    # The folding CRLF goes before the space that separated the words: unfolding restores it.
    return "\r\n ".join(lines)


def _encoded_words(name: str, value: str) -> str:
    data = value.encode()
    words, pos = [], 0
    room = max(ENCODED_LINE - len(name) - 2, 24)  # the first line also holds "Name: "
    while pos < len(data):
        end = min(len(data), pos + (room - len("=?utf-8?b??=")) // 4 * 3)
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1  # never split a UTF-8 character between two words
        words.append(f"=?utf-8?b?{base64.b64encode(data[pos:end]).decode()}?=")
        pos, room = end, ENCODED_LINE - 1
    return "\r\n ".join(words)


def _address(address: str) -> str:
    if PLAIN_ADDRESS.match(address):
        return address
    return sanitize_address(address, "utf-8")


def _address_header(name: str, value: str) -> str:
    # Django's own encoding of display names and IDN domains; the result is ASCII.
    return _fold_ascii(name, forbid_multi_line_headers(name, value, "utf-8")[1])


def _from_header(from_email: str) -> str:
    header = _from_cache.get(from_email)
    if header is None:
        _from_cache[from_email] = header = _address_header("From", from_email)
    return header


def _envelope_sender(sender: str, connection) -> str | tuple[str, str]:
    """What Django's SMTP backend should parse as MAIL FROM for `sender`.

    The From header comes from the extra headers; `from_email` only feeds the envelope, which
    Django's SMTP backend runs through the full RFC 5322 parser on every message. The
    ("", address) pair of a plain address takes its short path to the same MAIL FROM.
    Only for that backend: others may read `from_email` as a string.
    """
    if not isinstance(connection, SMTPBackend):
        return sender
    address = _envelope_cache.get(sender)
    if address is None:
        address = parseaddr(sender)[1]
        _envelope_cache[sender] = address = address if PLAIN_ADDRESS.match(address) else ""
    return ("", address) if address else sender


def _date() -> str:
    # formatdate() to the second, as Django does; one call per second is enough.
    key = (int(time.time()), settings.EMAIL_USE_LOCALTIME)
    if _date_cache[0] != key:
        _date_cache[:] = [key, formatdate(key[0], localtime=key[1])]
    return _date_cache[1]


def _body(content: str) -> tuple[bytes, str]:
    """A text part's body bytes (CRLF line ends) and their Content-Transfer-Encoding."""
    data = content.replace("\r\n", "\n").replace("\r", "\n").encode()
    if len(data) <= LINE_LIMIT or max(map(len, data.split(b"\n"))) <= LINE_LIMIT:
        return data.replace(b"\n", b"\r\n"), "8bit"
    encoded = base64.encodebytes(data.replace(b"\n", b"\r\n"))
    return encoded.replace(b"\n", b"\r\n").removesuffix(b"\r\n"), "base64"


def _part_head(subtype: str, encoding: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode()


class ComposedMessage:
    """The serialised MIME form of a `CampaignEmail`, shaped like what `message()` returns.

    Django's mail backends use `as_bytes()` (SMTP, and file/console through `as_bytes` and
    `get_charset`); anything else is answered by a stdlib message parsed from these bytes.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data  # CRLF line ends throughout
        self._parsed = None

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        if linesep == "\r\n":
            return self._data
        return self._data.replace(b"\r\n", linesep.encode())

    def as_string(self, unixfrom: bool = False, linesep: str = "\n") -> str:
        return self.as_bytes(linesep=linesep).decode()

    def get_charset(self):
        return None

    def _message(self):
        if self._parsed is None:
            self._parsed = message_from_bytes(self._data)
        return self._parsed

    def __getitem__(self, name: str):
        return self._message()[name]

    def __contains__(self, name: str) -> bool:
        return name in self._message()

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)  # copy and pickle probe before __init__ has run
        return getattr(self._message(), name)


class CampaignEmail(EmailMultiAlternatives):
    """`EmailMultiAlternatives` whose MIME form is composed directly; see the module docstring."""

    def message(self):
        encoding = (self.encoding or settings.DEFAULT_CHARSET).lower().replace("_", "-")
        html = [a for a in self.alternatives if a.mimetype == "text/html"]
        if (
            encoding not in ("utf-8", "utf8")
            or self.attachments
            or self.cc
            or self.reply_to
            or len(html) != len(self.alternatives)
            or len(html) > 1
        ):
            return super().message()
        return ComposedMessage(self._compose([a.content for a in html]))

    def recipients(self):
        addresses = super().recipients()
        if not isinstance(self.connection, SMTPBackend):
            return addresses
        # Django's SMTP backend parses every envelope address with the stdlib's full RFC 5322
        # parser (~60 µs each); a ("", address) pair of a plain address takes its short path
        # to the very same result. Only for that backend: others may expect strings here.
        return [
            ("", address) if isinstance(address, str) and PLAIN_ADDRESS.match(address) else address
            for address in addresses
        ]

    def _compose(self, html: list[str]) -> bytes:
        parts = ([("plain", self.body)] if self.body or not html else []) + [
            ("html", content) for content in html
        ]
        bodies = [(subtype, *_body(content)) for subtype, content in parts]
        extra = {name.lower(): value for name, value in self.extra_headers.items()}
        headers = [
            ("Subject", encode_header("Subject", self.subject)),
            ("From", _from_header(extra.get("from", self.from_email))),
        ]
        if "to" in extra:
            headers.append(("To", _address_header("To", extra["to"])))
        elif self.to:
            headers.append(("To", _fold_ascii("To", ", ".join(map(_address, self.to)))))
        if "date" not in extra:
            headers.append(("Date", _date()))
        if "message-id" not in extra:
            headers.append(("Message-ID", make_msgid(domain=DNS_NAME)))
        headers += [
            (name, encode_header(name, value))
            for name, value in self.extra_headers.items()
            if name.lower() not in {"from", "to", "cc", "reply-to"}
        ]
        head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
        if not html:
            subtype, data, cte = bodies[0]
            return (
                (
                    f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
                    f"Content-Transfer-Encoding: {cte}\r\n"
                ).encode()
                + head
                + b"\r\n"
                + data
            )
        boundary = _boundary
        while any(boundary.encode() in data for _, data, _ in bodies):
            boundary = _new_boundary()
        delimiter = f"\r\n--{boundary}\r\n".encode()
        return b"".join(
            [
                f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
                "MIME-Version: 1.0\r\n".encode(),
                head,
                b"\r\n",
                delimiter[2:],
                delimiter.join(_part_head(subtype, cte) + data for subtype, data, cte in bodies),
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )


class EmailChannel(ChannelBackend):
    """Sends over one connection per batch; a failed connection is reopened on the next send."""

    connection = None
    connect_error = ""

    def open(self) -> None:
        connection = get_connection(fail_silently=False)
        # Opened here, so Django's backend keeps it for the whole batch instead of connecting
        # and saying QUIT around every message. A server that is down now is reported by the
        # first `send` as a transient error, per message, with the reason kept here.
        try:
            connection.open()
        except (OSError, smtplib.SMTPException) as error:
            self.connect_error = repr(error)
            return
        self.connect_error = ""
        self.connection = connection

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except (OSError, smtplib.SMTPException) as error:
                # The server is gone already; nothing is left to release.
                log.debug("closing the SMTP connection failed: %r", error)
            self.connection = None

    def build(self, message: Outgoing) -> CampaignEmail:
        sender = settings.DEFAULT_FROM_EMAIL
        headers = {"From": sender, "Message-ID": message.idempotency_key, **message.headers}
        if message.unsubscribe_url:
            headers["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email = CampaignEmail(
            subject=message.subject,
            body=message.text,
            from_email=_envelope_sender(sender, self.connection),
            to=[message.to],
            headers=headers,
            connection=self.connection,
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        return email

    def send(self, message: Outgoing) -> str:
        if self.connection is None:
            self.open()
        if self.connection is None:
            raise TransientError(f"cannot connect to the mail server: {self.connect_error}")
        email = self.build(message)
        try:
            email.send()
        except ValueError as error:
            # An address or header that cannot be written (BadHeaderError is a ValueError):
            # no message data reached the server.
            self._drop_connection()
            raise PermanentError(repr(error)) from error
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            self._drop_connection()
            if codes and all(code >= 500 for code in codes):
                raise PermanentError(str(error)) from error
            raise TransientError(str(error)) from error
        except smtplib.SMTPResponseException as error:
            self._drop_connection()
            if error.smtp_code >= 500:
                raise PermanentError(f"{error.smtp_code} {error.smtp_error!r}") from error
            raise TransientError(f"{error.smtp_code} {error.smtp_error!r}") from error
        except (smtplib.SMTPException, OSError) as error:
            self._drop_connection()
            raise TransientError(repr(error)) from error
        return message.idempotency_key

    def _drop_connection(self) -> None:
        # After an error the SMTP session state is unknown: start the next send afresh.
        self.close()
