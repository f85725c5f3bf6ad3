"""The customer card, its phones, consent, custom fields, tags and the contact log.

Reads of customers go through `customers.access.visible_customers(user)`; nothing here filters
by user.
"""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from .folding import Fold


class Gender(models.TextChoices):
    UNKNOWN = "", _("Not stated")
    FEMALE = "f", _("Female")
    MALE = "m", _("Male")


class MaritalStatus(models.TextChoices):
    UNKNOWN = "", _("Not stated")
    SINGLE = "single", _("Single")
    MARRIED = "married", _("Married")
    DIVORCED = "divorced", _("Divorced")
    WIDOWED = "widowed", _("Widowed")


class LifecycleStage(models.TextChoices):
    LEAD = "lead", _("Lead (contacted, never bought)")
    CUSTOMER = "customer", _("Customer")
    LAPSED = "lapsed", _("Lapsed")


class Channel(models.TextChoices):
    """Channels a customer can consent to be contacted through."""

    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    MESSENGER = "messenger", _("Messenger")
    PHONE = "phone", _("Phone call")


class Source(models.TextChoices):
    WEB = "web", _("Web app")
    POS = "pos", _("Till (POS)")
    API = "api", _("API")
    IMPORT = "import", _("Import")
    ADMIN = "admin", _("Admin")
    DEMO = "demo", _("Demo data")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribe link")


class ConsentMethod(models.TextChoices):
    """How the customer expressed their agreement: the evidence behind a consent record."""

    UNSTATED = "", _("Not stated")
    PAPER = "paper", _("Signed a paper form")
    IN_PERSON = "in_person", _("Said so in person")
    PHONE_CALL = "phone_call", _("Said so on the phone")
    ELECTRONIC = "electronic", _("Ticked a box online or on the till screen")


class AcquisitionChannel(models.Model):
    """Where customers come from and what one costs to win (for historical lifetime value)."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=120)
    # Money as everywhere in the chain (sales.models.MONEY: 14 digits, 2 places); customers sits
    # below sales and does not import it.
    acquisition_cost = models.DecimalField(
        _("cost per customer"), max_digits=14, decimal_places=2, default=0
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("acquisition channel")
        verbose_name_plural = _("acquisition channels")

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=60, unique=True)
    color = models.CharField(_("colour"), max_length=7, default="#6c757d")

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class CustomFieldCategory(models.Model):
    """A group of admin-defined fields on the card, with why the store keeps them."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    purpose = models.TextField(_("purpose"), blank=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("custom field category")
        verbose_name_plural = _("custom field categories")

    def __str__(self) -> str:
        return self.name


class CustomFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    BOOLEAN = "bool", _("Yes/no")
    CHOICE = "choice", _("One of a list")
    MULTI = "multi", _("Several of a list")


class CustomField(models.Model):
    """An admin-defined card field; values live in `Customer.custom_fields` under `key`."""

    key = models.SlugField(_("key"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    type = models.CharField(_("type"), max_length=8, choices=CustomFieldType)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    category = models.ForeignKey(
        CustomFieldCategory, on_delete=models.PROTECT, related_name="fields"
    )
    help_text = models.CharField(_("help text"), max_length=300, blank=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["category__order", "order", "name"]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    # Identity
    surname = models.CharField(_("surname"), max_length=100, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    patronymic = models.CharField(_("patronymic"), max_length=100, blank=True)
    gender = models.CharField(
        _("gender"), max_length=1, choices=Gender, blank=True, default=Gender.UNKNOWN
    )
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    # Contact details (phones are in CustomerPhone; the primary one is mirrored here for lists)
    phone = models.CharField(_("primary phone"), max_length=20, blank=True, editable=False)
    email = models.EmailField(_("email"), blank=True)
    extra_emails = models.JSONField(_("other emails"), default=list, blank=True)
    card_number = models.CharField(
        _("loyalty card"), max_length=32, null=True, blank=True, unique=True
    )
    postal_code = models.CharField(_("postal code"), max_length=12, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    # Work and family
    workplace = models.CharField(_("workplace"), max_length=200, blank=True)
    position = models.CharField(_("position"), max_length=200, blank=True)
    marital_status = models.CharField(
        _("marital status"), max_length=10, choices=MaritalStatus, blank=True, default=""
    )
    children_count = models.PositiveSmallIntegerField(_("children"), null=True, blank=True)
    interests = models.TextField(_("interests"), blank=True)
    preferences = models.TextField(_("preferences"), blank=True)
    notes = models.TextField(_("notes"), blank=True)
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="customers")
    # Relationship
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=10, choices=LifecycleStage, default=LifecycleStage.LEAD
    )
    acquisition_channel = models.ForeignKey(
        AcquisitionChannel,
        verbose_name=_("acquisition channel"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    home_store = models.ForeignKey(
        "crm.Store",
        verbose_name=_("home store"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="home_customers",
    )
    assigned_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_customers",
        db_index=False,  # Meta's `customer_manager` is the index; a second one only slowed writes
    )
    # Current consent per channel; the history is in ConsentEvent (see customers.services).
    consent_email = models.BooleanField(_("email consent"), default=False)
    consent_sms = models.BooleanField(_("SMS consent"), default=False)
    consent_messenger = models.BooleanField(_("messenger consent"), default=False)
    consent_phone = models.BooleanField(_("phone call consent"), default=False)
    do_not_contact = models.BooleanField(_("do not contact"), default=False)
    erased_at = models.DateTimeField(_("personal data erased at"), null=True, blank=True)
    # Consent to processing (152-FZ), mirrored from customers.privacy.ProcessingConsent.
    processing_document = models.ForeignKey(
        "customers.ProcessingConsentDocument",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("consent to processing, version"),
    )
    processing_consent_at = models.DateTimeField(
        _("consent to processing given at"), null=True, blank=True
    )
    processing_withdrawn_at = models.DateTimeField(
        _("consent to processing withdrawn at"), null=True, blank=True
    )
    erasure_due_at = models.DateTimeField(_("erasure scheduled for"), null=True, blank=True)
    # What receipts and aggregates are kept under once the person is erased. A database default
    # too, so raw COPY writers (the demo, imports) need not name the column.
    pseudonym = models.CharField(
        _("pseudonymous id"), max_length=24, blank=True, default="", db_default=""
    )
    # Stamps
    source = models.CharField(_("source"), max_length=12, choices=Source, default=Source.WEB)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["surname", "first_name", "id"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [
            ("view_all_customers", _("Can see every customer of the chain")),
            ("view_store_customers", _("Can see customers of own stores and assigned ones")),
            ("lookup_customers", _("Can look customers up by phone or card")),
            ("view_contact_details", _("Can see unmasked phones, emails and addresses")),
            ("export_customers", _("Can export customer lists")),
        ]
        indexes = [
            models.Index(fields=["home_store", "surname"], name="customer_store_surname"),
            # The list's default order and its keyset cursor, so any page is an index range scan.
            models.Index(fields=["surname", "first_name", "id"], name="customer_name_order"),
            models.Index(fields=["assigned_manager"], name="customer_manager"),
            models.Index(fields=["lifecycle_stage"], name="customer_stage"),
            models.Index(fields=["created_at"], name="customer_created"),
            models.Index(Upper("email"), name="customer_email_upper"),
            # Birthday look-ahead ("next 7 days") reads month and day, never the year.
            models.Index("birth_date", name="customer_birth_date"),
            # Search compares folded names (Ё as Е, see customers.folding): typos and
            # fragments through the trigram indexes, exact prefixes through the btree one.
            GinIndex(
                OpClass(Fold("surname"), name="gin_trgm_ops"),
                name="customer_surname_fold_trgm",
            ),
            GinIndex(
                OpClass(Fold("first_name"), name="gin_trgm_ops"),
                name="customer_first_fold_trgm",
            ),
            models.Index(
                OpClass(Fold("surname"), name="text_pattern_ops"),
                name="customer_surname_fold_prefix",
            ),
            # Name search fetches the cards of the names it matched in NameToken by these, in
            # the ranked page's tie order (first name, surname, id) within one surname or one
            # first name, so a page reads its 50 rows and stops (customers.selectors.search).
            models.Index(
                Fold("surname"), Fold("first_name"), "surname", "id", name="customer_name_walk"
            ),
            models.Index(Fold("first_name"), "surname", "id", name="customer_first_name_walk"),
            GinIndex(fields=["custom_fields"], name="customer_custom_fields"),
        ]

    def __str__(self) -> str:
        return self.full_name or f"#{self.pk}"

    def get_absolute_url(self) -> str:
        return f"/customers/{self.pk}/"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.surname, self.first_name, self.patronymic) if p)

    @property
    def short_name(self) -> str:
        """How a letter addresses a Russian customer: first name and patronymic."""
        return " ".join(p for p in (self.first_name, self.patronymic) if p) or self.full_name

    def has_consent(self, channel: str) -> bool:
        return (
            not self.do_not_contact
            and self.erased_at is None
            and bool(getattr(self, f"consent_{channel}"))
        )


class PhoneKind(models.TextChoices):
    MOBILE = "mobile", _("Mobile")
    HOME = "home", _("Home")
    WORK = "work", _("Work")


class CustomerPhone(models.Model):
    """A phone in E.164; a number belongs to one customer across the whole base."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="phones")
    number = models.CharField(_("phone"), max_length=20, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=PhoneKind, default=PhoneKind.MOBILE)
    is_primary = models.BooleanField(_("primary"), default=False)

    class Meta:
        ordering = ["-is_primary", "id"]
        verbose_name = _("phone")
        verbose_name_plural = _("phones")
        indexes = [
            # A fragment of a number typed in the search box ("5612", "529-56-12").
            GinIndex(OpClass("number", name="gin_trgm_ops"), name="phone_number_trgm"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=Q(is_primary=True), name="phone_one_primary"
            ),
            models.CheckConstraint(
                condition=Q(number__regex=r"^\+[1-9][0-9]{6,14}$"), name="phone_is_e164"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class ImportantDateKind(models.TextChoices):
    CHILD_BIRTHDAY = "child_birthday", _("Child's birthday")
    SPOUSE_BIRTHDAY = "spouse_birthday", _("Spouse's birthday")
    WEDDING = "wedding", _("Wedding anniversary")
    OTHER = "other", _("Other")


class ImportantDate(models.Model):
    """Family dates a store can greet a customer on (children's birthdays, anniversaries)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="important_dates")
    kind = models.CharField(_("kind"), max_length=20, choices=ImportantDateKind)
    label = models.CharField(_("who or what"), max_length=100, blank=True)
    date = models.DateField(_("date"))

    class Meta:
        ordering = ["date"]
        verbose_name = _("important date")
        verbose_name_plural = _("important dates")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label} {self.date:%d.%m}"


class ConsentEvent(models.Model):
    """One grant or withdrawal of consent: the legal record behind the flags on the card."""

    # Indexed by `consent_history`, which starts with the customer (a second index only slowed
    # every new card's consent rows).
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consents", db_index=False
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel)
    granted = models.BooleanField(_("granted"))
    at = models.DateTimeField(_("when"))
    source = models.CharField(_("recorded through"), max_length=12, choices=Source)
    method = models.CharField(
        _("how the customer agreed"),
        max_length=12,
        choices=ConsentMethod,
        blank=True,
        default=ConsentMethod.UNSTATED,
        # Bulk writers (COPY in the demo and imports) leave the column out.
        db_default=ConsentMethod.UNSTATED,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        indexes = [models.Index(fields=["customer", "channel", "-at"], name="consent_history")]

    def __str__(self) -> str:
        verb = "+" if self.granted else "-"
        return f"{verb}{self.channel} {self.at:%Y-%m-%d}"


class ContactChannel(models.TextChoices):
    PHONE = "phone", _("Phone call")
    VISIT = "visit", _("Store visit")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    MESSENGER = "messenger", _("Messenger")
    SOCIAL = "social", _("Social network")
    OTHER = "other", _("Other")


class Direction(models.TextChoices):
    INBOUND = "in", _("Inbound")
    OUTBOUND = "out", _("Outbound")


class Contact(models.Model):
    """One entry of the contact log: who spoke to the customer, about what, what was agreed."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="customer_contacts",
    )
    store = models.ForeignKey(
        "crm.Store", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(_("when"))
    channel = models.CharField(_("channel"), max_length=10, choices=ContactChannel)
    direction = models.CharField(_("direction"), max_length=3, choices=Direction)
    topic = models.CharField(_("topic"), max_length=200)
    outcome = models.TextField(_("outcome"), blank=True)
    agreement = models.TextField(_("agreement reached"), blank=True)
    next_step = models.CharField(_("next step"), max_length=300, blank=True)
    due_date = models.DateField(_("next step due"), null=True, blank=True)
    done_at = models.DateTimeField(_("next step done at"), null=True, blank=True)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("contact")
        verbose_name_plural = _("contact log")
        indexes = [
            models.Index(fields=["customer", "-at"], name="contact_customer_time"),
            models.Index(
                fields=["staff", "due_date"],
                condition=Q(due_date__isnull=False, done_at__isnull=True),
                name="contact_open_followups",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(due_date__isnull=True) | ~Q(next_step=""),
                name="contact_due_date_needs_next_step",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d} {self.topic}"


class SavedFilter(models.Model):
    """A named customer-list search and filter set of one user, shown beside the search box.

    Only the query string is kept: opening it runs the list through the same door as any search,
    so a saved filter never widens what its owner may see.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_filters"
    )
    name = models.CharField(_("name"), max_length=80)
    query = models.CharField(_("filter"), max_length=1000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("saved filter")
        verbose_name_plural = _("saved filters")
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="saved_filter_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class NameToken(models.Model):
    """A distinct folded surname or first name present in the base (the search dictionary).

    A million cards carry only tens of thousands of distinct names, so name search matches typos,
    fragments and Latin spellings against these few rows and then fetches the cards holding the
    matched names by an exact index look-up. Database triggers (migration 0009) add the names of
    every inserted or renamed card, whatever writes it (forms, API, imports, COPY); a name no card
    carries any more is harmless (it matches no card) and `name_tokens_prune` removes it.
    """

    SURNAME = "s"
    FIRST_NAME = "f"

    kind = models.CharField(max_length=1)
    token = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "token"], name="name_token_unique"),
        ]
        indexes = [
            # New names go to a small pending list that the inserting statement merges in one
            # sorted pass once it passes 256 kB (migration 0014): a search reads at most those
            # 32 pages linearly, where the default 4 MB list left by a bulk load tripled every
            # probe, and an import of new surnames no longer pays a GIN descent per trigram.
            GinIndex(
                OpClass("token", name="gin_trgm_ops"),
                name="name_token_trgm",
                fastupdate=True,
                gin_pending_list_limit=256,
            ),
        ]

    def __str__(self) -> str:
        return self.token


# Models of the import and duplicates packages, registered with this app.
# Personal-data models live in their own module; importing them here registers them.
# (Its ConsentMethod, how consent to processing was taken, stays there: this module's
# ConsentMethod is how a mailing consent was given.)
from customers.privacy.models import (  # noqa: E402, F401
    ProcessingConsent,
    ProcessingConsentDocument,
    SubjectAccessRequest,
)

from .duplicates.models import *  # noqa: E402, F403
from .imports.models import *  # noqa: E402, F403
