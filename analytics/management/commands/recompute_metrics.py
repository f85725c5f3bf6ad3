"""`manage.py recompute_metrics`: the full recompute now (`--if-never-run`: only on a base with
receipts that has never finished one, as on the first start of an install)."""

from django.core.management.base import BaseCommand

from analytics.models import RecomputeRun, RunStatus
from analytics.services import metrics_recompute_all
from sales.models import Receipt


class Command(BaseCommand):
    help = "Recompute every customer's metrics and refit the CLV models."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--if-never-run",
            action="store_true",
            help="Do nothing unless receipts exist and no recompute has ever finished.",
        )

    def handle(self, *args, **options) -> None:
        if options["if_never_run"] and (
            RecomputeRun.objects.filter(status=RunStatus.DONE).exists()
            or not Receipt.objects.exists()
        ):
            return
        run = metrics_recompute_all(from_scratch=True)
        self.stdout.write(f"Metrics recomputed for {run.customers:,} customers: {run.status}.")
