"""The WSGI application gunicorn serves (`crm.launcher.web_command`, one per worker process)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
application = get_wsgi_application()


def _settle() -> None:
    """Load the URLconf (every view and serializer module) now, then move everything the
    process holds into the collector's permanent generation.

    Those objects live as long as the worker; left in the tracked generations, every full
    collection walked all of them again, and the request that happened to trigger one paid for
    it (the till's calculation at p99 and a batch of receipts, see bench/README.md "Loyalty
    booking as plain rows"). Frozen, a collection walks only what requests allocate.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the import is the point
    gc.collect()
    gc.freeze()


_settle()
