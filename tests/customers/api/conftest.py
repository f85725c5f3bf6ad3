import pytest


@pytest.fixture(autouse=True)
def english(settings):
    """Assertions read English messages; the API speaks the client's Accept-Language."""
    settings.LANGUAGE_CODE = "en"
