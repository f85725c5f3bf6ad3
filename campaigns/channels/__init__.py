"""Channel backends: how a rendered message reaches a customer.

To add a provider, subclass `ChannelBackend` (or `campaigns.channels.http.HttpGatewayChannel`
for a JSON-over-HTTP gateway with a different payload), implement `send`, and name the class in
`CLIENTELE_CHANNEL_BACKENDS` for its channel. `send` returns the provider's id of the message
and raises `TransientError` for anything worth retrying later (timeouts, 4xx SMTP replies, HTTP
429/5xx) and `PermanentError` for anything that will never succeed (a refused address, HTTP 4xx).
A backend is opened once per batch, so it may keep a connection open between `send` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string


class DeliveryError(Exception):
    pass


class TransientError(DeliveryError):
    """Worth retrying later with backoff."""


class PermanentError(DeliveryError):
    """Will never succeed; recorded on the message."""


@dataclass
class Outgoing:
    """A rendered message, ready for a backend."""

    channel: str
    to: str
    text: str
    subject: str = ""
    html: str = ""
    # Unique per message: the SMTP Message-ID, the gateways' Idempotency-Key.
    idempotency_key: str = ""
    unsubscribe_url: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class ChannelBackend:
    """Base class of channel backends; see the module docstring."""

    channel: str = ""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def open(self) -> None:
        """Prepare for a batch of sends (open a connection); optional."""

    def close(self) -> None:
        """Release what `open` took; optional."""

    def send(self, message: Outgoing) -> str:
        raise NotImplementedError

    @classmethod
    def configured(cls, channel: str) -> bool:
        """Whether messages of `channel` can leave through this backend; email and any custom
        backend are taken as configured (Django's mail settings always name a backend)."""
        return True

    def __enter__(self) -> ChannelBackend:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get_backend(channel: str) -> ChannelBackend:
    """A fresh backend for `channel` as configured in CLIENTELE_CHANNEL_BACKENDS."""
    return import_string(settings.CLIENTELE_CHANNEL_BACKENDS[channel])(channel)


def channel_configured(channel: str) -> bool:
    """Whether messages of `channel` can leave: its backend says (`ChannelBackend.configured`;
    an HTTP gateway needs its URL)."""
    path = settings.CLIENTELE_CHANNEL_BACKENDS.get(channel)
    if not path:
        return False
    backend = import_string(path)
    if isinstance(backend, type) and issubclass(backend, ChannelBackend):
        return backend.configured(channel)
    return True


def configured_channels(channels) -> list[str]:
    """The codes among `channels` that `channel_configured` accepts, in the given order."""
    return [code for code in channels if channel_configured(code)]
