"""The demo data generator behind `manage.py seed_demo` (see `demo.services.demo_seed`)."""
