"""`manage.py seed_demo`: load the demo store chain (customers, sales, contact log, logins)."""

import argparse
import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from demo.services import DemoBaseNotEmpty, demo_seed


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--today must be a date like 2025-06-30, not {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Fill an empty database with a reproducible demo chain: stores, products, customers, "
        "receipts, returns, contacts and one login per role. The same --seed and --today give "
        "the same rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=2000)
        parser.add_argument("--stores", type=int, default=5)
        parser.add_argument("--years", type=int, default=3, help="Years of purchase history.")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--today",
            type=_date,
            default=None,
            help="Anchor date of the history (YYYY-MM-DD); defaults to the current date.",
        )
        parser.add_argument(
            "--users",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="Create the demo logins (admin, marketer, manager, associate).",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="First EMPTY all customers, sales, stores, products and the contact log.",
        )
        parser.add_argument("--quiet", action="store_true", help="Print nothing but errors.")

    def handle(self, *args, **options) -> None:
        if options["customers"] < 1 or options["stores"] < 1:
            raise CommandError("--customers and --stores must be at least 1.")
        if not 1 <= options["years"] <= 20:
            raise CommandError("--years must be between 1 and 20.")
        quiet = options["quiet"]
        try:
            summary = demo_seed(
                customers=options["customers"],
                stores=options["stores"],
                years=options["years"],
                seed=options["seed"],
                today=options["today"] or timezone.localdate(),
                users=options["users"],
                reset=options["reset"],
                log=None if quiet else self.stdout.write,
            )
        except DemoBaseNotEmpty as exc:
            raise CommandError(
                f"The database is not empty: it has {exc}. Nothing was changed. Run "
                "seed_demo --reset to wipe customers, sales and the contact log first."
            ) from exc
        # Never blank: the first full recompute runs now, so the dashboard and the cards show
        # classes, the model and its backtest from the first page view.
        # Looked up by name: crm sits below analytics and must not import it.
        from django.apps import apps
        from django.utils.module_loading import import_string

        if apps.is_installed("analytics"):
            recompute = import_string("analytics.services.metrics_recompute_all")
            # As of the demo's own "today" (its history ends when that day begins), so that an
            # anchor in the past does not leave months of silence before the figures.
            today = options["today"] or timezone.localdate()
            anchor = dt.datetime.combine(today, dt.time(), timezone.get_current_timezone())
            run = recompute(from_scratch=True, as_of=min(timezone.now(), anchor))
            if not quiet:
                self.stdout.write(f"Metrics computed for {run.customers:,} customers.")
        if quiet:
            return
        counts = ", ".join(f"{n:,} {name}" for name, n in summary.counts.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded in {summary.seconds:.1f}s: {counts}; "
                f"revenue {summary.revenue:,.2f} RUB."
            )
        )
        if summary.logins:
            self.stdout.write(f"Demo logins (password: {summary.password}):")
            for username, role in summary.logins:
                self.stdout.write(f"  {username:<10} {role}")
