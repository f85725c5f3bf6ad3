"""Real servers for the campaign tests: an SMTP server (aiosmtpd) and an HTTP gateway, both on
loopback, plus helpers to build customers, segments and campaigns."""

from __future__ import annotations

import email
import json
import socket
import threading
from decimal import Decimal
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from campaigns.models import Campaign
from sales.services import LineInput, receipt_record
from tests.factories import CategoryFactory, CustomerFactory, ProductFactory


class SmtpSink:
    """Collects every message the server accepted; `fail_for` makes it refuse recipients."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()
        self.fail_for: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.fail_for:
            return self.fail_for[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]

    def recipients(self) -> list[str]:
        return sorted(m["To"] for m in self.messages)


def free_port() -> int:
    # aiosmtpd's readiness check cannot use port 0, so ask the OS for a free one first.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp(settings):
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    sink.port = settings.EMAIL_PORT
    yield sink
    controller.stop()


class Gateway:
    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.lock = threading.Lock()


@pytest.fixture
def gateway(settings):
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers["Authorization"],
                        "key": self.headers["Idempotency-Key"],
                        "json": json.loads(body),
                    }
                )
                status = state.status
            reply = json.dumps({"id": f"gw-{len(state.requests)}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/send"
    settings.CLIENTELE_SMS_GATEWAY_URL = url
    settings.CLIENTELE_SMS_GATEWAY_TOKEN = "sms-secret"
    settings.CLIENTELE_MESSENGER_GATEWAY_URL = url
    settings.CLIENTELE_MESSENGER_GATEWAY_TOKEN = "im-secret"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def campaign_settings(settings):
    # No quiet hours and no cap unless a test sets them: each test states the rule it checks.
    settings.CLIENTELE_QUIET_HOURS = ""
    settings.CLIENTELE_CAP_MESSAGES = 1000
    settings.CLIENTELE_CAP_DAYS = 7
    settings.CLIENTELE_SITE_URL = "https://crm.example.ru"
    settings.LANGUAGE_CODE = "en"
    return settings


def customer(store, **kwargs):
    defaults = {"consent_email": True, "consent_sms": True, "home_store": store}
    return CustomerFactory(**{**defaults, **kwargs})


def make_campaign(user, **kwargs) -> Campaign:
    defaults = {
        "name": "Весна",
        "channel": "email",
        "subject": "Hello {{ first_name }}",
        "body_html": "<p>Dear {{ first_name }} {{ patronymic }}, see you at {{ store }}!</p>",
        "body_text": "Hi {{ first_name }}, spring sale at {{ store }}",
        "holdout_share": Decimal("0"),
        "created_by": user,
    }
    return Campaign.objects.create(**{**defaults, **kwargs})


class Shop:
    def __init__(self, store):
        self.store = store
        self.category = CategoryFactory(name="Цветы")
        self.n = 0

    def buy(self, who, at, amount, *, cost=None, category=None):
        self.n += 1
        amount = Decimal(str(amount))
        cost = amount * Decimal("0.6") if cost is None else Decimal(str(cost))
        product = ProductFactory(category=category or self.category)
        return receipt_record(
            store=self.store,
            pos_receipt_id=f"C-{self.n}",
            purchased_at=at,
            lines=[
                LineInput(product=product, quantity=Decimal("1"), unit_price=amount, unit_cost=cost)
            ],
            customer=who,
        )


@pytest.fixture
def shop(store_a):
    return Shop(store_a)
