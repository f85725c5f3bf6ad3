"""`manage.py trace_export FILE`: name the export a leaked CSV or XLSX file came from."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from customers.traps import export_trace


class Command(BaseCommand):
    help = "Find the export (user, time, filter) a leaked CSV/XLSX file or fragment came from."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The leaked file: CSV or XLSX, whole or a fragment.")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from error
        matches = export_trace(data=data, filename=path.name)
        if not matches:
            raise CommandError("no export's trap record was found in this file")
        for match in matches:
            event = match.event
            details = event.details
            self.stdout.write(
                f"export #{event.pk} by {event.actor_name or '?'} "
                f"at {timezone.localtime(event.at):%Y-%m-%d %H:%M:%S %Z} "
                f"({details.get('format', '?')}, {details.get('rows', '?')} rows, "
                f"filter {details.get('filters') or {}}, "
                f"sha256 {details.get('sha256', '')[:16]}…); "
                f"trap on line {match.line}, matched {', '.join(match.matched)}"
            )
