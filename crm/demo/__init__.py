"""The demo data generator behind `manage.py seed_demo` (see `crm.demo.services.demo_seed`)."""
