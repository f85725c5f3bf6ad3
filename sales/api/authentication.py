"""`Authorization: Api-Key <key>`: the till of one store (keys are issued in `sales.apikeys`).

Settings name this class by dotted string (REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES), so
crm, which holds the settings, never imports sales.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from crm.api_tokens import header_credential
from sales.apikeys import pos_key_authenticate

API_KEY_KEYWORD = "Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    """Answers DRF with (the till principal, its key), or None for another scheme."""

    def authenticate(self, request):
        raw = header_credential(request, API_KEY_KEYWORD, _("Invalid Api-Key header."))
        if raw is None:
            return None
        principal = pos_key_authenticate(raw)
        if principal is None:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked API key."))
        return principal, principal.api_key

    def authenticate_header(self, request) -> str:
        return API_KEY_KEYWORD
