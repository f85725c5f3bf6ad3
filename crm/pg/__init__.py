"""PostgreSQL tooling shared by the apps: table rebuild and catalog reads, binary COPY, bulk loads.

Each module is self-contained; import the one you need (`from crm.pg.rebuild import rebuild_table`).
"""
