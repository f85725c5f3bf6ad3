from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
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


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def _remember_credentials(sender, instance, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    instance._clientele_before = (
        sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    )


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _revoke_tokens(sender, instance, created=False, raw=False, **kwargs) -> None:
    """A new password or a deactivation ends every API token of the user, as it ends sessions.

    A token kept after a password change would let whoever stole the old password keep
    reading through the API; Django already drops the sessions (the session hash changes).
    """
    before = getattr(instance, "_clientele_before", None)
    instance._clientele_before = None
    if raw or created or before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        from .api_tokens import user_tokens_revoke

        user_tokens_revoke(user=instance)
