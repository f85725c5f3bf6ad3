"""Celery tasks of the bonus programme: thin wrappers over loyalty.services, safe to rerun."""

from celery import shared_task


@shared_task(ignore_result=True)
def activate_points() -> int:
    """Make points whose hold period has passed available."""
    from . import services

    return services.points_activate_due()


@shared_task(ignore_result=True)
def expire_points() -> int:
    """Write the expiries due by now (each credit expires at its store's local midnight)."""
    from . import services

    return services.points_expire_due()


@shared_task(ignore_result=True)
def nightly_tiers_and_bonuses() -> None:
    """Re-place every account in its tier; grant today's birthday bonuses."""
    from . import services

    services.tiers_recompute()
    services.birthday_bonuses_grant()
