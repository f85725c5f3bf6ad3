"""`manage.py create_pos_key --store CODE [--name NAME] [--catalogue]`: issue a POS key and print it
once. `--catalogue` issues a catalogue key (may change products, prices and costs; sees no
customer) instead of a till key."""

from django.core.management.base import BaseCommand, CommandError

from crm.models import Store
from sales.apikeys import pos_key_issue
from sales.models import PosKeyKind


class Command(BaseCommand):
    help = "Issue an API key for a store's till; the key is printed once and stored hashed."

    def add_arguments(self, parser):
        parser.add_argument("--store", required=True, help="Store code.")
        parser.add_argument("--name", default="", help="What the key is for (till number).")
        parser.add_argument(
            "--catalogue",
            action="store_true",
            help="A catalogue key: changes products, prices and costs; sees no customer.",
        )

    def handle(self, *args, store: str, name: str, catalogue: bool = False, **options):
        found = Store.objects.filter(code=store).first()
        if found is None:
            raise CommandError(f"No store with code {store!r}.")
        kind = PosKeyKind.CATALOGUE if catalogue else PosKeyKind.TILL
        default_name = f"{found.code} catalogue" if catalogue else f"{found.code} till"
        issued = pos_key_issue(store=found, name=name or default_name, kind=kind)
        self.stderr.write(
            f"Key {issued.key.prefix}… for {found}. Store it now: it is not shown again."
        )
        self.stdout.write(issued.raw)
