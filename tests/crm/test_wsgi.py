"""The served application settles its long-lived objects before the first request."""

import os
import subprocess
import sys

from django.conf import settings


def test_the_wsgi_module_loads_the_urlconf_and_freezes_what_it_holds():
    script = (
        "import gc, sys; import crm.wsgi; "
        "print(gc.get_freeze_count(), 'sales.api.views' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    frozen, views_loaded = int(out[0]), out[1] == "True"
    # Tens of thousands of objects (modules, models, URL patterns); a bare interpreter has none.
    assert frozen > 10_000
    assert views_loaded
