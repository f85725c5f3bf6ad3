"""A generic HTTP gateway for SMS and messengers: a JSON POST with a bearer token.

The request is ``POST <URL>`` with ``Authorization: Bearer <token>``, ``Idempotency-Key`` and
a JSON body ``{"channel", "to", "text", "sender", "idempotency_key"}``; a 2xx reply may carry
``{"id": "..."}``. The URL and token come from ``CLIENTELE_<CHANNEL>_GATEWAY_URL`` and
``..._TOKEN``. A provider with another payload subclasses this and overrides `payload` and
`provider_id`.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext

from . import ChannelBackend, Outgoing, PermanentError, TransientError


class HttpGatewayChannel(ChannelBackend):
    @classmethod
    def configured(cls, channel: str) -> bool:
        return bool(getattr(settings, f"CLIENTELE_{channel.upper()}_GATEWAY_URL", ""))

    def open(self) -> None:
        prefix = f"CLIENTELE_{self.channel.upper()}_GATEWAY"
        url = getattr(settings, f"{prefix}_URL", "")
        # Shown to whoever tried to send (a test send, a failed message): say what to do.
        self.missing = (
            ""
            if url
            else gettext(
                "Sending by %(channel)s is not set up yet: an administrator sets "
                "%(setting)s on the server (see the README, section Channels)."
            )
            % {"channel": self.channel.upper(), "setting": f"{prefix}_URL"}
        )
        self.url = urlsplit(url)
        self.token = getattr(settings, f"{prefix}_TOKEN", "")
        self.connection = None

    def close(self) -> None:
        if getattr(self, "connection", None) is not None:
            self.connection.close()
            self.connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            cls = (
                http.client.HTTPSConnection
                if self.url.scheme == "https"
                else http.client.HTTPConnection
            )
            self.connection = cls(
                self.url.hostname, self.url.port, timeout=settings.CLIENTELE_GATEWAY_TIMEOUT
            )
        return self.connection

    def payload(self, message: Outgoing) -> dict:
        return {
            "channel": self.channel,
            "to": message.to,
            "text": message.text,
            "sender": settings.CLIENTELE_SMS_SENDER,
            "idempotency_key": message.idempotency_key,
        }

    def provider_id(self, body: bytes, message: Outgoing) -> str:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return message.idempotency_key
        return str(data.get("id") or message.idempotency_key)[:200]

    def send(self, message: Outgoing) -> str:
        if not hasattr(self, "url"):
            self.open()
        if self.missing:
            raise PermanentError(self.missing)
        body = json.dumps(self.payload(message), ensure_ascii=False).encode()
        path = self.url.path or "/"
        if self.url.query:
            path = f"{path}?{self.url.query}"
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": message.idempotency_key,
        }
        try:
            connection = self._connect()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            reply = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise TransientError(repr(error)) from error
        if 200 <= response.status < 300:
            return self.provider_id(reply, message)
        text = f"HTTP {response.status}: {reply[:300].decode(errors='replace')}"
        if response.status in (408, 425, 429) or response.status >= 500:
            self.close()
            raise TransientError(text)
        raise PermanentError(text)
