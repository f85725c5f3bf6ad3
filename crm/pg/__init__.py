"""PostgreSQL tooling shared by the apps."""
