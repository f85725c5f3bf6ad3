"""Sign-in, throttling, password change and reset, navigation per role, language switch."""

import re

import pytest
from django.core import mail

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def nav_items(client):
    return set(re.findall(r'data-nav="([a-z-]+)"', client.get("/").content.decode()))


def test_sign_in_and_out(client, manager_a):
    response = client.post("/login/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/logout/")
    assert client.get("/").status_code == 302


def test_wrong_password_shows_an_error(client, manager_a):
    response = client.post("/login/", {"username": "bob", "password": "nope"})
    assert response.status_code == 200
    assert 'data-testid="login-error"' in response.content.decode()


def test_repeated_failures_lock_out_with_a_clear_message(client, manager_a, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "bob", "password": "nope"})
    response = client.post("/login/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 429
    assert 'data-testid="lockout"' in response.content.decode()
    assert client.get("/customers/").status_code == 302


def test_password_change(client, manager_a):
    client.force_login(manager_a)
    response = client.post(
        "/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer new secret",
            "new_password2": "a much longer new secret",
        },
    )
    assert response.status_code == 302
    manager_a.refresh_from_db()
    assert manager_a.check_password("a much longer new secret")


def test_password_reset_by_email(client, manager_a):
    response = client.post("/password/reset/", {"email": "bob@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/password/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "another long secret 42", "new_password2": "another long secret 42"},
    )
    assert done.status_code == 302
    manager_a.refresh_from_db()
    assert manager_a.check_password("another long secret 42")


def test_navigation_shows_each_role_only_what_it_may_use(
    client, admin_user, manager_a, marketer, associate_a, outsider
):
    expected = {
        admin_user: {
            "today",
            "customers",
            "leads",
            "new-card",
            "duplicates",
            "import",
            "campaigns",
            "analytics",
            "audit",
            "admin",
        },
        manager_a: {"today", "customers", "leads", "new-card", "duplicates", "analytics"},
        marketer: {"today", "customers", "leads", "campaigns", "analytics"},
        associate_a: {"today", "customers", "leads", "new-card"},
        outsider: set(),
    }
    for user, items in expected.items():
        client.force_login(user)
        assert nav_items(client) == items, user.username


def test_language_switch_translates_the_page(client, manager_a):
    client.force_login(manager_a)
    client.post("/i18n/setlang/", {"language": "en", "next": "/customers/"})
    english = client.get("/customers/").content.decode()
    assert "Customers" in english
    client.post("/i18n/setlang/", {"language": "ru", "next": "/customers/"})
    russian = client.get("/customers/").content.decode()
    assert "Клиенты" in russian
    assert 'lang="ru"' in russian
