from tests.campaigns.conftest import gateway, smtp  # noqa: F401  (real SMTP and HTTP servers)
from tests.web.conftest import anna, boris  # noqa: F401  (shared personas' customers)
