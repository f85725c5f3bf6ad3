"""Phone numbers: every number is stored in E.164, whatever the till or the manager typed."""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def normalize_phone(raw: str, region: str | None = None) -> str:
    """Return `raw` in E.164 (`8 (916) 123-45-67` -> `+79161234567`) or raise ValidationError."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("Enter a phone number."), code="required")
    if len(text) > 32:
        raise ValidationError(_("This is not a phone number."), code="invalid")
    try:
        parsed = phonenumbers.parse(text, region or settings.CLIENTELE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(_("This is not a phone number."), code="invalid") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            _("%(phone)s is not a valid phone number."), code="invalid", params={"phone": text}
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def try_normalize_phone(raw: str, region: str | None = None) -> str | None:
    """E.164 form of `raw`, or None when it is not a phone (for search boxes, not for writes)."""
    try:
        return normalize_phone(raw, region)
    except ValidationError:
        return None


def format_phone(e164: str) -> str:
    """Human form for pages: `+7 916 123-45-67`."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
