"""Per-person API tokens (`Authorization: Token <key>`): issued, checked and revoked here.

The key is 256 random bits shown once, when issued; only its SHA-256 is stored
(`crm.models.UserApiToken`), so a copy of the database lets nobody call the API as staff. A
fast hash is safe for random keys where it would not be for passwords. This replaces DRF's
`rest_framework.authtoken`, which keeps keys as they are (migration crm 0010 hashed the keys it
had issued and dropped its table).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .audit import audit_record
from .models import AuditAction, UserApiToken

KEYWORD = "Token"
KEY_PREFIX = "cu_"
PREFIX_LENGTH = 11
# A hint for admins, not an audit trail: one write a minute per token is plenty.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def user_token_issue(*, user, name: str = "", actor=None, request=None) -> tuple[UserApiToken, str]:
    """A new token for `user`; the returned raw key is the only copy that will ever exist."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    token = UserApiToken.objects.create(
        user=user, name=name, prefix=raw[:PREFIX_LENGTH], key_hash=token_hash(raw)
    )
    audit_record(
        actor=actor,
        action=AuditAction.API_KEY,
        obj=token,
        request=request,
        event="issued",
        user=user.get_username(),
    )
    return token, raw


def user_tokens_revoke(*, user, actor=None, request=None) -> int:
    """End every token of `user` (their password changed, or the account was closed)."""
    deleted, _rows = UserApiToken.objects.filter(user=user).delete()
    if deleted:
        audit_record(
            actor=actor,
            action=AuditAction.API_KEY,
            request=request,
            event="revoked",
            user=user.get_username(),
            rows=deleted,
        )
    return deleted


def last_used_touch(model, row, now=None) -> None:
    """Record that a credential row (`last_used_at`) was used, at most once a resolution
    interval: conditional, so parallel requests with one credential write once."""
    now = now or timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        model.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
            pk=row.pk,
        ).update(last_used_at=now)
        row.last_used_at = now


def header_credential(request, keyword: str, invalid) -> str | None:
    """The key after `keyword` in the Authorization header (`Token <key>`, `Api-Key <key>`);
    None when the header names another scheme; AuthenticationFailed(`invalid`) if malformed."""
    header = get_authorization_header(request).split()
    if not header or header[0].lower() != keyword.lower().encode():
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed(invalid)
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError as exc:
        raise exceptions.AuthenticationFailed(invalid) from exc


def user_token_authenticate(raw: str) -> UserApiToken | None:
    """The active user's token for a presented key, or None."""
    # Not only our own prefix: keys DRF's authtoken issued were hashed as they were (crm 0010).
    if not raw or len(raw) > 100:
        return None
    token = (
        UserApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(raw), user__is_active=True)
        .first()
    )
    if token is not None:
        last_used_touch(UserApiToken, token)
    return token


class HashedTokenAuthentication(BaseAuthentication):
    """DRF's `Token <key>` scheme against hashed keys: (the person, their token), or None for
    another scheme."""

    def authenticate(self, request):
        raw = header_credential(request, KEYWORD, _("Invalid Token header."))
        if raw is None:
            return None
        token = user_token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked token."))
        return token.user, token

    def authenticate_header(self, request) -> str:
        return KEYWORD


class TokenScheme(OpenApiAuthenticationExtension):
    """The scheme in the OpenAPI description (drf-spectacular finds it when DRF imports the
    authentication class above, as the settings name it)."""

    target_class = "crm.api_tokens.HashedTokenAuthentication"
    name = "TokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; a person's token is issued by an administrator.",
        }
