from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .audit import audit_record
from .models import AuditAction


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs) -> None:
    audit_record(actor=user, action=AuditAction.LOGIN, request=request)


@receiver(user_logged_out)
def _audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(actor=user, action=AuditAction.LOGOUT, request=request)


@receiver(user_login_failed)
def _audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Never store the attempted password; the username is what an admin needs to see.
    username = str(credentials.get("username", ""))[:150]
    audit_record(actor=None, action=AuditAction.LOGIN_FAILED, request=request, actor_name=username)
