"""Customer pages at the site root rather than under /customers/ (included by crm's URL conf).

The Today page is the start page of every signed-in user; the consent-withdrawal link is public
and goes out in messages, so neither path may change.
"""

from django.urls import path

from .privacy.views import withdraw_link
from .today import today_page

urlpatterns = [
    path("", today_page, name="home"),
    path("privacy/withdraw/<str:token>/", withdraw_link, name="privacy_withdraw"),
]
