"""Demo logins, one per role, sharing one documented password.

Re-running the seed updates them in place (and resets the password), never duplicates them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from crm import roles
from crm.models import StaffProfile, Store

DEMO_PASSWORD = "clientele-demo"  # noqa: S105 - documented demo login, see README


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    first_name: str
    last_name: str
    is_staff: bool
    works_in_first_store: bool


DEMO_LOGINS = [
    DemoLogin("admin", roles.ADMINISTRATOR, "Алла", "Администраторова", True, False),
    DemoLogin("marketer", roles.MARKETER, "Марина", "Маркова", False, False),
    DemoLogin("manager", roles.STORE_MANAGER, "Михаил", "Управов", False, True),
    DemoLogin("associate", roles.SALES_ASSOCIATE, "Светлана", "Продавцова", False, True),
]


def demo_users_ensure(*, first_store: Store | None) -> list:
    """Create or refresh the four demo logins; store staff get a profile in `first_store`."""
    User = get_user_model()
    # One hash for all four: the password is public anyway, and Argon2 is slow on purpose.
    encoded = make_password(DEMO_PASSWORD)
    users = []
    for login in DEMO_LOGINS:
        user, _ = User.objects.get_or_create(username=login.username)
        user.first_name = login.first_name
        user.last_name = login.last_name
        user.email = f"{login.username}@demo.clientele.local"
        user.is_staff = login.is_staff
        user.is_superuser = False
        user.is_active = True
        user.password = encoded
        user.save()
        user.groups.set([Group.objects.get(name=login.role)])
        if login.works_in_first_store and first_store is not None:
            profile, _ = StaffProfile.objects.get_or_create(user=user)
            profile.stores.set([first_store])
        users.append(user)
    return users
