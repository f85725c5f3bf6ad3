from tests.web.conftest import anna, boris  # noqa: F401  (shared personas' customers)
