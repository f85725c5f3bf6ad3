"""`manage.py create_pos_key --store CODE [--name NAME]`: issue a POS key and print it once."""

from django.core.management.base import BaseCommand, CommandError

from sales.apikeys import pos_key_issue
from sales.models import Store


class Command(BaseCommand):
    help = "Issue an API key for a store's till; the key is printed once and stored hashed."

    def add_arguments(self, parser):
        parser.add_argument("--store", required=True, help="Store code.")
        parser.add_argument("--name", default="", help="What the key is for (till number).")

    def handle(self, *args, store: str, name: str, **options):
        found = Store.objects.filter(code=store).first()
        if found is None:
            raise CommandError(f"No store with code {store!r}.")
        issued = pos_key_issue(store=found, name=name or f"{found.code} till")
        self.stderr.write(
            f"Key {issued.key.prefix}… for {found}. Store it now: it is not shown again."
        )
        self.stdout.write(issued.raw)
