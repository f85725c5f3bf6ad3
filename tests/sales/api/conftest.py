"""The POS API suite reads English messages (its shared fixtures are in tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def english(settings):
    """Assertions read English messages; the API speaks the client's Accept-Language."""
    settings.LANGUAGE_CODE = "en"
