"""The catalogue, receipts with their lines, and returns (stores live in `crm`).

Money is `Decimal` everywhere. A receipt line keeps its own unit cost, so the margin of every
sale is known when it happens, whatever the catalogue cost becomes later.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Cast, Round
from django.utils.translation import gettext_lazy as _

from crm.models import Store

MONEY = {"max_digits": 14, "decimal_places": 2}
QUANTITY = {"max_digits": 12, "decimal_places": 3}
ZERO = Decimal("0")


class Category(models.Model):
    """A node of the product category tree; `path` ("Одежда/Платья") makes subtree reads cheap."""

    name = models.CharField(_("name"), max_length=120)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(_("path"), max_length=500, unique=True, editable=False)

    class Meta:
        ordering = ["path"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="category_unique_name"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(parent__isnull=True), name="category_unique_root"
            ),
        ]

    def __str__(self) -> str:
        return self.path

    def save(self, *args, **kwargs) -> None:
        self.path = f"{self.parent.path}/{self.name}" if self.parent_id else self.name
        super().save(*args, **kwargs)


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=300)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="products"
    )
    price = models.DecimalField(_("price"), **MONEY, validators=[MinValueValidator(ZERO)])
    cost = models.DecimalField(
        _("cost"), **MONEY, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            models.CheckConstraint(
                condition=Q(price__gte=0) & Q(cost__gte=0), name="product_money_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class PaymentMethod(models.TextChoices):
    CASH = "cash", _("Cash")
    CARD = "card", _("Bank card")
    SBP = "sbp", _("Faster payments (SBP)")
    ONLINE = "online", _("Online payment")
    BONUS = "bonus", _("Bonus points")
    MIXED = "mixed", _("Mixed")


class SalesChannel(models.TextChoices):
    STORE = "store", _("In store")
    ONLINE = "online", _("Online shop")
    PHONE = "phone", _("Phone order")


class Receipt(models.Model):
    # No single-column FK indexes: (store, purchased_at) and (customer, purchased_at) lead with
    # these columns, and every index costs each POS write.
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="receipts", db_index=False
    )
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="receipts",
        db_index=False,
    )
    pos_receipt_id = models.CharField(_("POS receipt id"), max_length=64)
    purchased_at = models.DateTimeField(_("purchased at"))
    payment_method = models.CharField(
        _("payment method"), max_length=16, choices=PaymentMethod, default=PaymentMethod.CARD
    )
    channel = models.CharField(
        _("channel"), max_length=16, choices=SalesChannel, default=SalesChannel.STORE
    )
    total = models.DecimalField(_("total"), **MONEY)
    # The sum of the lines' margins, kept by statement-level triggers on sales_receiptline
    # (migration 0004) so that every writer (the ORM, the bulk SQL ingest, COPY) keeps it
    # exact. The nightly metrics then read money from receipts alone instead of joining every
    # line; an instance loaded before its lines were written still holds the old value.
    margin = models.DecimalField(_("margin"), **MONEY, db_default=ZERO, editable=False)
    # Total and margin in whole minor units (kopecks), stored by PostgreSQL beside the
    # decimals: the nightly metrics sum millions of them per customer, and turning a numeric
    # into an integer row by row cost that aggregate more than everything else in it did.
    total_minor = models.GeneratedField(
        expression=Cast(F("total") * 100, models.BigIntegerField()),
        output_field=models.BigIntegerField(),
        db_persist=True,
        verbose_name=_("total in kopecks"),
    )
    margin_minor = models.GeneratedField(
        expression=Cast(F("margin") * 100, models.BigIntegerField()),
        output_field=models.BigIntegerField(),
        db_persist=True,
        verbose_name=_("margin in kopecks"),
    )
    # Fingerprint of the posted content, so a retried POST can be told from a conflicting one.
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        ordering = ["-purchased_at"]
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        constraints = [
            models.UniqueConstraint(
                fields=["store", "pos_receipt_id"], name="receipt_unique_pos_id_per_store"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="receipt_total_not_negative"),
        ]
        indexes = [
            # A customer's receipts with their ids and money: the nightly metrics aggregate
            # every receipt per customer, and read the whole history of every customer who
            # bought that day, from the index alone (an index-only scan in customer order
            # feeds a streaming group-by; a heap scan would read the wide rows and hash).
            models.Index(
                fields=["customer", "purchased_at"],
                include=["id", "total", "total_minor", "margin_minor"],
                name="receipt_customer_totals",
            ),
            models.Index(fields=["store", "purchased_at"], name="receipt_store_time"),
            models.Index(fields=["purchased_at"], name="receipt_time"),
            # Receipts received since the previous nightly run: whose history changed.
            models.Index(fields=["created_at"], name="receipt_received"),
        ]

    def __str__(self) -> str:
        return f"{self.store.code}/{self.pos_receipt_id}"


class ReceiptLine(models.Model):
    # Covered by the unique (receipt, line_no) index.
    receipt = models.ForeignKey(
        Receipt, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    line_no = models.PositiveSmallIntegerField(_("line"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="receipt_lines")
    quantity = models.DecimalField(_("quantity"), **QUANTITY)
    unit_price = models.DecimalField(_("unit price"), **MONEY)
    discount = models.DecimalField(_("discount"), **MONEY, default=ZERO)
    unit_cost = models.DecimalField(_("unit cost"), **MONEY, default=ZERO)
    # Stored by PostgreSQL, so set-based analytics never recompute (or disagree about) them.
    amount = models.GeneratedField(
        expression=Round(F("quantity") * F("unit_price") - F("discount"), 2),
        output_field=models.DecimalField(**MONEY),
        db_persist=True,
        verbose_name=_("amount"),
    )
    margin = models.GeneratedField(
        expression=Round(
            F("quantity") * F("unit_price") - F("discount") - F("quantity") * F("unit_cost"), 2
        ),
        output_field=models.DecimalField(**MONEY),
        db_persist=True,
        verbose_name=_("margin"),
    )

    class Meta:
        ordering = ["receipt", "line_no"]
        verbose_name = _("receipt line")
        verbose_name_plural = _("receipt lines")
        constraints = [
            # Carries product and amount, so reading a receipt's lines for favourite
            # categories needs no visit to the table (analytics.metrics).
            models.UniqueConstraint(
                fields=["receipt", "line_no"],
                include=["product", "amount"],
                name="receipt_line_unique_no",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0) & Q(unit_cost__gte=0) & Q(discount__gte=0),
                name="line_money_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(discount__lte=F("quantity") * F("unit_price")),
                name="line_discount_within_price",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.receipt_id}#{self.line_no}"


class Return(models.Model):
    """Goods brought back; each line points at the receipt line it returns."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="returns")
    receipt = models.ForeignKey(Receipt, on_delete=models.PROTECT, related_name="returns")
    pos_return_id = models.CharField(_("POS return id"), max_length=64)
    returned_at = models.DateTimeField(_("returned at"))
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        ordering = ["-returned_at"]
        verbose_name = _("return")
        verbose_name_plural = _("returns")
        constraints = [
            models.UniqueConstraint(
                fields=["store", "pos_return_id"], name="return_unique_pos_id_per_store"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store.code}/{self.pos_return_id}"


class ReturnLine(models.Model):
    return_doc = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="lines")
    receipt_line = models.ForeignKey(
        ReceiptLine, on_delete=models.PROTECT, related_name="return_lines"
    )
    quantity = models.DecimalField(_("quantity"), **QUANTITY)
    # Refund and margin given back, at the line's own price, discount and cost, pro rata.
    amount = models.DecimalField(_("refund"), **MONEY)
    margin = models.DecimalField(_("margin returned"), **MONEY)

    class Meta:
        verbose_name = _("return line")
        verbose_name_plural = _("return lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="return_quantity_positive"),
            models.UniqueConstraint(
                fields=["return_doc", "receipt_line"], name="return_line_unique_per_return"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.return_doc_id}: {self.receipt_line_id} x {self.quantity}"


class PosKeyKind(models.TextChoices):
    TILL = "till", _("Till of the store")
    CATALOGUE = "catalogue", _("Catalogue (products, prices, costs)")


class PosApiKey(models.Model):
    """A till's credential: belongs to one store, stored only as a hash, revocable.

    Keys are long random strings, not passwords, so a plain SHA-256 is enough to keep a leaked
    table from being usable; `prefix` is the non-secret start of the key, to tell keys apart.
    """

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="pos_keys")
    name = models.CharField(_("name"), max_length=100)
    # A till looks customers up and sends its store's receipts, and may add the products it
    # sells; a catalogue key (the chain's product system) may change prices, costs and status
    # of any product and sees no customer (sales/catalogue.py).
    kind = models.CharField(_("kind"), max_length=10, choices=PosKeyKind, default=PosKeyKind.TILL)
    prefix = models.CharField(_("prefix"), max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["store", "name"]
        verbose_name = _("POS API key")
        verbose_name_plural = _("POS API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
