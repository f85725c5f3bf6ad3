"""REST API routes under /api/ (POS API, integrations, OpenAPI schema and docs)."""

urlpatterns: list = []
