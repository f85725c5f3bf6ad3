"""Customer endpoints of the REST API: till look-up and create, integration reads and edits.

Every read starts from `crm.access.visible_customers(request.user)` (or `lookup_customers` for
an exact phone/card at the till), so an invisible customer is a 404 like a missing one.
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from crm.api import CheckedCursorPagination, error_response, error_responses, strict_query
from crm.audit import audit_record
from crm.models import AuditAction
from customers.access import (
    ContactDetails,
    contact_details,
    lookup_customers,
    user_store_ids,
    visible_customers,
)
from customers.disclosure import (
    ContactsCapReached,
    FullListNotPermitted,
    card_read,
    daily_allowance,
    list_contacts,
    taken_today,
)
from sales.api.serializers import (
    MAX_ID,
    AwareDateTimeField,
    PhoneField,
    ReceiptOutputSerializer,
    StrictSerializer,
)
from sales.selectors import customer_receipts

from .duplicates.merge import card_alias_survivors, resolve_alias
from .models import (
    ConsentMethod,
    ContactChannel,
    Customer,
    CustomerPhone,
    Direction,
    Gender,
    LifecycleStage,
    Source,
)
from .phones import try_normalize_phone
from .privacy.serializers import ProcessingConsentInputSerializer, processing_body
from .privacy.services import record_from_api
from .services import DuplicateCustomer, contact_record, customer_create, customer_update

# --- Permissions ---------------------------------------------------------------------------


class ModelPermission(permissions.BasePermission):
    """The Django permissions each method needs (`perms` on the view, by method).

    On a customer's own endpoints (`object_view`) they are checked only once the customer is
    found among the visible ones, so an invisible customer is a 404 whatever the caller's role.
    """

    def has_permission(self, request, view) -> bool:
        if getattr(view, "object_view", False):
            return True
        return request.user.has_perms(view.perms.get(request.method, ()))

    def has_object_permission(self, request, view, obj) -> bool:
        return request.user.has_perms(view.perms.get(request.method, ()))


def is_till(user) -> bool:
    return bool(getattr(user, "is_pos_client", False))


def till_refused() -> Response:
    """A till gets the minimal card by exact look-up and creates cards; it lists nobody."""
    return error_response(
        "pos_key_not_allowed",
        _("A till finds customers by exact phone or card (customers/lookup/) and lists nobody."),
        status.HTTP_403_FORBIDDEN,
    )


def cap_refused(refused: ContactsCapReached) -> Response:
    return error_response(
        "daily_cap",
        str(refused),
        status.HTTP_429_TOO_MANY_REQUESTS,
        cap=refused.cap,
        used=refused.used,
    )


def service_actor(user):
    """The user to stamp on records; a till (POS key) is not a person, so none."""
    return None if getattr(user, "is_pos_client", False) else user


def visible_customer_or_404(user, pk: int) -> Customer:
    if not 1 <= pk <= MAX_ID:
        raise Http404
    customer = visible_customers(user).filter(pk=pk).first()
    if customer is None:
        raise Http404
    return customer


# --- Serializers -----------------------------------------------------------------------------


class ConsentSerializer(serializers.Serializer):
    email = serializers.BooleanField()
    sms = serializers.BooleanField()
    messenger = serializers.BooleanField()
    phone = serializers.BooleanField()
    do_not_contact = serializers.BooleanField()


def consent_of(customer: Customer) -> dict:
    return {
        "email": customer.consent_email,
        "sms": customer.consent_sms,
        "messenger": customer.consent_messenger,
        "phone": customer.consent_phone,
        "do_not_contact": customer.do_not_contact,
    }


def value_class_of(customer: Customer) -> str | None:
    """The analytics value class (VIP/A/B/C/D) once analytics has computed it."""
    try:
        metrics = getattr(customer, "metrics", None)
    except ObjectDoesNotExist:
        return None
    return getattr(metrics, "value_class", None) or None


def display_name(customer: Customer) -> str:
    """ "Анна Сергеевна И.": enough for a cashier to greet, no more."""
    initial = f"{customer.surname[:1]}." if customer.surname else ""
    return " ".join(p for p in (customer.first_name, customer.patronymic, initial) if p) or (
        f"#{customer.pk}"
    )


class PointsSerializer(serializers.Serializer):
    tier = serializers.CharField(allow_null=True, help_text="Bonus programme tier.")
    available = serializers.DecimalField(max_digits=14, decimal_places=2)
    pending = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Earned, still in the hold period."
    )


def points_of(customer: Customer) -> dict:
    """The bonus account (kept by the loyalty app, read through its reverse relation)."""
    try:
        account = getattr(customer, "loyalty", None)
    except ObjectDoesNotExist:
        account = None
    if account is None:
        return {"tier": None, "available": "0.00", "pending": "0.00"}
    tier = account.tier if account.tier_id else None
    return {
        "tier": tier.name if tier else None,
        "available": account.available,
        "pending": account.pending,
    }


class CustomerLookupSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    card_number = serializers.CharField(allow_null=True)
    value_class = serializers.CharField(allow_null=True, help_text="VIP, A, B, C or D.")
    consent = ConsentSerializer()
    points = PointsSerializer()


def lookup_body(customer: Customer) -> dict:
    return CustomerLookupSerializer(
        {
            "id": customer.pk,
            "display_name": display_name(customer),
            "card_number": customer.card_number,
            "value_class": value_class_of(customer),
            "consent": consent_of(customer),
            "points": points_of(customer),
        }
    ).data


class CustomerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    surname = serializers.CharField()
    first_name = serializers.CharField()
    patronymic = serializers.CharField()
    gender = serializers.CharField()
    birth_date = serializers.DateField(allow_null=True)
    phone = serializers.CharField(help_text="Primary phone; masked without the permission.")
    phones = serializers.ListField(child=serializers.CharField())
    email = serializers.CharField()
    card_number = serializers.CharField(allow_null=True)
    city = serializers.CharField()
    postal_code = serializers.CharField()
    address = serializers.CharField()
    home_store = serializers.IntegerField(allow_null=True)
    lifecycle_stage = serializers.CharField()
    consent = ConsentSerializer()
    points = PointsSerializer()
    contact_details_masked = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def customer_body(customer: Customer, user, contacts: ContactDetails | None = None) -> dict:
    """The card as JSON; `contacts` as `crm.disclosure` decided (masked by default)."""
    if contacts is None:
        contacts = contact_details(customer, user, masked=True)
    return CustomerOutputSerializer(
        {
            "id": customer.pk,
            "surname": customer.surname,
            "first_name": customer.first_name,
            "patronymic": customer.patronymic,
            "gender": customer.gender,
            "birth_date": customer.birth_date,
            "phone": contacts.phone,
            "phones": list(contacts.phones),
            "email": contacts.email,
            "card_number": customer.card_number,
            "city": customer.city,
            "postal_code": contacts.postal_code,
            "address": contacts.address,
            "home_store": customer.home_store_id,
            "lifecycle_stage": customer.lifecycle_stage,
            "consent": consent_of(customer),
            "points": points_of(customer),
            "contact_details_masked": contacts.masked,
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
        }
    ).data


class ConsentInputSerializer(StrictSerializer):
    email = serializers.BooleanField(required=False)
    sms = serializers.BooleanField(required=False)
    messenger = serializers.BooleanField(required=False)
    phone = serializers.BooleanField(required=False)
    method = serializers.ChoiceField(
        choices=ConsentMethod.choices,
        required=False,
        allow_blank=True,
        help_text="How the customer agreed (paper, in_person, phone_call, electronic); "
        "kept with each consent granted at registration.",
    )


class CustomerWriteSerializer(StrictSerializer):
    surname = serializers.CharField(max_length=100, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    patronymic = serializers.CharField(max_length=100, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    card_number = serializers.CharField(
        max_length=32, required=False, allow_blank=True, allow_null=True
    )
    postal_code = serializers.CharField(max_length=12, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    phones = serializers.ListField(
        child=PhoneField(), required=False, max_length=5, help_text="Any common format."
    )

    def validate_birth_date(self, value):
        if value is not None and not (1900 <= value.year <= 2100):
            raise serializers.ValidationError(_("Give a real birth date."))
        return value


class CustomerCreateSerializer(CustomerWriteSerializer):
    consent = ConsentInputSerializer(required=False, help_text="Consent given at registration.")
    processing_consent = ProcessingConsentInputSerializer(
        required=False,
        help_text="Consent to processing of personal data given at registration (152-FZ).",
    )
    home_store = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text="Ignored for POS keys: their store is the home store.",
    )


class CustomerUpdateSerializer(CustomerWriteSerializer):
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    do_not_contact = serializers.BooleanField(required=False)


class SaneDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO datetime within 1900–2200, in UTC: PostgreSQL rejects odd offsets like +16:56."""

    def to_python(self, value):
        result = super().to_python(value)
        if result is None:
            return None
        if not (1900 <= result.year <= 2200):
            raise DjangoValidationError(_("Give a date between 1900 and 2200."), code="invalid")
        return result.astimezone(dt.UTC) if result.tzinfo else result


class SaneDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = SaneDateTimeField


class CustomerFilter(django_filters.FilterSet):
    phone = django_filters.CharFilter(method="filter_phone", max_length=32, label="Exact phone")
    card_number = django_filters.CharFilter(max_length=32)
    home_store = django_filters.NumberFilter(
        field_name="home_store_id", min_value=1, max_value=MAX_ID, decimal_places=0
    )
    lifecycle_stage = django_filters.ChoiceFilter(choices=LifecycleStage.choices)
    gender = django_filters.ChoiceFilter(choices=Gender.choices[1:])
    updated_after = SaneDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    created_after = SaneDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = ["phone", "card_number", "home_store", "lifecycle_stage", "gender"]

    def filter_phone(self, queryset, name, value):
        number = try_normalize_phone(value)
        if number is None:
            return queryset.none()
        return queryset.filter(
            pk__in=CustomerPhone.objects.filter(number=number).values("customer_id")
        )


class IdCursorPagination(CheckedCursorPagination):
    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = settings.CLIENTELE_API_MAX_PAGE_SIZE


class RecentFirstPagination(CheckedCursorPagination):
    ordering = ("-purchased_at", "-id")
    position_kind = "datetime"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ContactLogPagination(RecentFirstPagination):
    ordering = ("-at", "-id")


# --- Views -----------------------------------------------------------------------------------


def duplicate_response(exc: DuplicateCustomer) -> Response:
    return error_response(
        "duplicate",
        exc.messages[0],
        status.HTTP_409_CONFLICT,
        {exc.field: list(exc.messages)},
        existing_id=exc.existing_id,
    )


_CUSTOMER_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Customer id.")


class CustomerLookupApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        operation_id="customer_lookup",
        summary="Find a customer by exact phone or loyalty card (the till's look-up)",
        parameters=[
            OpenApiParameter("phone", str, description="Any common format, e.g. 8 916 123-45-67."),
            OpenApiParameter("card", str, description="Loyalty card number."),
        ],
        responses={200: CustomerLookupSerializer, **error_responses(400, 401, 403, 404)},
        tags=["customers"],
    )
    def get(self, request):
        strict_query(request)
        phone = request.query_params.get("phone", "").strip()
        card = request.query_params.get("card", "").strip()
        if bool(phone) == bool(card):
            raise serializers.ValidationError({"phone": [_("Give exactly one of phone or card.")]})
        customers = lookup_customers(request.user)
        if phone:
            number = try_normalize_phone(phone[:32])
            if number is None:
                raise serializers.ValidationError({"phone": [_("This is not a phone number.")]})
            customer = customers.filter(phones__number=number).first()
        else:
            # An old card of a merged-away customer finds the card that absorbed it (one query).
            customer = customers.filter(
                Q(card_number=card[:32]) | Q(pk__in=card_alias_survivors(card[:32]))
            ).first()
        if customer is None:
            raise Http404
        # The minimal card carries no contacts, so it is not counted; it is audited like any
        # card read (a till is named by its key, not a person).
        till = is_till(request.user)
        audit_record(
            actor=None if till else request.user,
            actor_name=request.user.get_username() if till else "",
            action=AuditAction.API_CARD_READ,
            obj=customer,
            request=request,
            via="lookup",
            **({"store": request.user.store.code} if till else {}),
        )
        return Response(lookup_body(customer))


class CustomerListCreateApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    perms = {"POST": ["customers.add_customer"]}
    pagination_class = IdCursorPagination
    filterset_class = CustomerFilter
    serializer_class = CustomerOutputSerializer

    def get_queryset(self):
        return (
            visible_customers(self.request.user)
            .select_related("loyalty__tier")
            .prefetch_related("phones")
            .order_by("id")
        )

    @extend_schema(
        operation_id="customer_list",
        summary="Customers the caller may see, oldest first, cursor-paginated",
        description=(
            "Contact details are masked in lists. `contacts=full` unmasks them for users with "
            "the export permission; every row then counts against the daily export cap (429 "
            "beyond it). Not available to POS keys (403)."
        ),
        parameters=[
            OpenApiParameter(
                "contacts", str, enum=["masked", "full"], description="Default `masked`."
            ),
            # A store id: a whole number from 1 (the filter says so; the generated schema
            # would only say "number").
            OpenApiParameter(
                "home_store", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, required=False
            ),
        ],
        responses={
            200: CustomerOutputSerializer(many=True),
            **error_responses(400, 401, 403, 404, 429),
        },
        tags=["customers"],
    )
    def get(self, request):
        if is_till(request.user):
            return till_refused()
        strict_query(request)
        mode = request.query_params.get("contacts", "masked")
        if mode not in ("masked", "full"):
            raise serializers.ValidationError({"contacts": [_("Give masked or full.")]})
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        try:
            shown = list_contacts(
                user=request.user,
                customers=page,
                full=mode == "full",
                request=request,
                action=AuditAction.API_LIST_READ,
                filters={k: v for k, v in request.query_params.items() if k != "cursor"},
            )
        except FullListNotPermitted as refused:
            return error_response(refused.code, str(refused), status.HTTP_403_FORBIDDEN)
        except ContactsCapReached as refused:
            return cap_refused(refused)
        return self.get_paginated_response(
            [customer_body(c, request.user, s) for c, s in zip(page, shown, strict=True)]
        )

    @extend_schema(
        operation_id="customer_create",
        summary="Create a customer card",
        description="A phone or card number that already exists is a 409 with `existing_id`.",
        request=CustomerCreateSerializer,
        responses={
            201: CustomerOutputSerializer,
            **error_responses(400, 401, 403, 409, 413),
        },
        tags=["customers"],
    )
    def post(self, request):
        serializer = CustomerCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        phones = data.pop("phones", [])
        consent = dict(data.pop("consent", {}))
        consent_method = consent.pop("method", "")
        user = request.user
        store_id = data.pop("home_store", None)
        if getattr(user, "is_pos_client", False):
            # A till's new customers belong to its store, so it can read them back in full.
            data["home_store"] = user.store
            source = Source.POS
        else:
            source = Source.API
            if store_id is not None:
                from crm.models import Store

                stores = Store.objects.all()
                if not (user.is_superuser or user.has_perm("customers.view_all_customers")):
                    # As on the web form: a card goes only into one of the user's own stores.
                    stores = stores.filter(pk__in=user_store_ids(user))
                store = stores.filter(pk=store_id).first()
                if store is None:
                    raise serializers.ValidationError(
                        {"home_store": [_("Choose one of your own stores.")]}
                    )
                data["home_store"] = store
        processing = data.pop("processing_consent", None)
        try:
            # One transaction: a card is never left without the consent it came with.
            with transaction.atomic():
                customer = customer_create(
                    actor=service_actor(user),
                    phones=phones,
                    consents={channel: granted for channel, granted in consent.items()},
                    consent_method=consent_method,
                    source=source,
                    request=request,
                    **data,
                )
                if processing is not None:
                    record_from_api(customer=customer, user=user, data=processing, request=request)
        except DuplicateCustomer as exc:
            return duplicate_response(exc)
        customer = Customer.objects.prefetch_related("phones").get(pk=customer.pk)
        # A person who typed the contacts in gets them back (nothing new leaves); a till gets
        # the card masked, as it never reads contacts.
        shown = contact_details(customer, user, masked=is_till(user))
        body = customer_body(customer, user, shown)
        body["processing_consent"] = processing_body(customer)
        return Response(body, status=status.HTTP_201_CREATED)


class CustomerDetailApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    perms = {"PATCH": ["customers.change_customer"]}
    object_view = True
    serializer_class = CustomerOutputSerializer

    def get_object(self):
        customer = visible_customer_or_404(self.request.user, self.kwargs["pk"])
        self.check_object_permissions(self.request, customer)
        return customer

    @extend_schema(
        operation_id="customer_detail",
        summary="One customer card",
        description=(
            "Every read is audited. Unmasked contacts count one card a day against the caller's "
            "daily allowance; beyond it the answer is 429. Not available to POS keys (403)."
        ),
        parameters=[_CUSTOMER_ID],
        responses={200: CustomerOutputSerializer, **error_responses(401, 403, 404, 429)},
        tags=["customers"],
    )
    def get(self, request, pk: int):
        if is_till(request.user):
            return till_refused()
        strict_query(request)
        try:
            customer = self.get_object()
        except Http404:
            # A merged-away id answers 301 to the card that absorbed it, with `merged_into`.
            survivor_id = resolve_alias(pk) if 1 <= pk <= MAX_ID else None
            if survivor_id and visible_customers(request.user).filter(pk=survivor_id).exists():
                response = Response({"merged_into": survivor_id}, status=301)
                response["Location"] = reverse("api-customer-detail", args=[survivor_id])
                return response
            raise
        shown = card_read(
            user=request.user, customer=customer, action=AuditAction.API_CARD_READ, request=request
        )
        if shown.capped:
            return cap_refused(
                ContactsCapReached(
                    cap=daily_allowance(request.user),
                    used=taken_today(request.user),
                    wanted=1,
                )
            )
        return Response(customer_body(customer, request.user, shown))

    @extend_schema(
        operation_id="customer_partial_update",
        summary="Change some fields of a card",
        parameters=[_CUSTOMER_ID],
        request=CustomerUpdateSerializer,
        responses={
            200: CustomerOutputSerializer,
            **error_responses(400, 401, 403, 404, 409, 413),
        },
        tags=["customers"],
    )
    def patch(self, request, pk: int):
        customer = self.get_object()
        serializer = CustomerUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        phones = data.pop("phones", None)
        try:
            customer_update(
                actor=service_actor(request.user),
                customer=customer,
                data=data,
                phones=phones,
                request=request,
            )
        except DuplicateCustomer as exc:
            return duplicate_response(exc)
        customer = Customer.objects.prefetch_related("phones").get(pk=customer.pk)
        shown = card_read(
            user=request.user,
            customer=customer,
            action=AuditAction.API_CARD_READ,
            request=request,
            audit=False,
        )
        return Response(customer_body(customer, request.user, shown))


class CustomerReceiptsApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    perms = {"GET": ["sales.view_receipt"]}
    object_view = True
    pagination_class = RecentFirstPagination
    serializer_class = ReceiptOutputSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="customer_receipts",
        summary="A customer's receipts, newest first",
        parameters=[_CUSTOMER_ID],
        responses={200: ReceiptOutputSerializer(many=True), **error_responses(401, 403, 404)},
        tags=["customers"],
    )
    def get(self, request, pk: int):
        strict_query(request)
        from sales.api.views import receipt_body
        from sales.signals import answers_extra

        customer = visible_customer_or_404(request.user, pk)
        self.check_object_permissions(request, customer)
        page = self.paginate_queryset(customer_receipts(customer=customer))
        extra = answers_extra(list(page))
        return self.get_paginated_response([receipt_body(r, extra.get(r.pk, {})) for r in page])


class ContactOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    channel = serializers.CharField()
    direction = serializers.CharField()
    topic = serializers.CharField()
    outcome = serializers.CharField()
    agreement = serializers.CharField()
    next_step = serializers.CharField()
    due_date = serializers.DateField(allow_null=True)
    done_at = serializers.DateTimeField(allow_null=True)
    staff = serializers.CharField(allow_null=True, help_text="Username of who logged it.")
    store = serializers.CharField(allow_null=True, help_text="Store code.")


def contact_body(contact) -> dict:
    return ContactOutputSerializer(
        {
            "id": contact.pk,
            "at": contact.at,
            "channel": contact.channel,
            "direction": contact.direction,
            "topic": contact.topic,
            "outcome": contact.outcome,
            "agreement": contact.agreement,
            "next_step": contact.next_step,
            "due_date": contact.due_date,
            "done_at": contact.done_at,
            "staff": contact.staff.get_username() if contact.staff_id else None,
            "store": contact.store.code if contact.store_id else None,
        }
    ).data


class ContactInputSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=ContactChannel.choices)
    direction = serializers.ChoiceField(choices=Direction.choices)
    topic = serializers.CharField(max_length=200)
    at = AwareDateTimeField(required=False, help_text="When it happened; now when omitted.")
    outcome = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    agreement = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    next_step = serializers.CharField(max_length=300, required=False, allow_blank=True)
    due_date = serializers.DateField(required=False, allow_null=True)

    def validate_due_date(self, value):
        if value is not None and not (2000 <= value.year <= 2100):
            raise serializers.ValidationError(_("Give a date between 2000 and 2100."))
        return value


class CustomerContactsApi(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, ModelPermission]
    perms = {"GET": ["customers.view_contact"], "POST": ["customers.add_contact"]}
    object_view = True
    pagination_class = ContactLogPagination
    serializer_class = ContactOutputSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="customer_contacts",
        summary="A customer's contact log, newest first",
        parameters=[_CUSTOMER_ID],
        responses={200: ContactOutputSerializer(many=True), **error_responses(401, 403, 404)},
        tags=["customers"],
    )
    def get(self, request, pk: int):
        strict_query(request)
        customer = visible_customer_or_404(request.user, pk)
        self.check_object_permissions(request, customer)
        contacts = customer.contacts.select_related("staff", "store")
        page = self.paginate_queryset(contacts)
        return self.get_paginated_response([contact_body(c) for c in page])

    @extend_schema(
        operation_id="customer_contact_create",
        summary="Log a contact with the customer",
        parameters=[_CUSTOMER_ID],
        request=ContactInputSerializer,
        responses={
            201: ContactOutputSerializer,
            **error_responses(400, 401, 403, 404, 413),
        },
        tags=["customers"],
    )
    def post(self, request, pk: int):
        customer = visible_customer_or_404(request.user, pk)
        self.check_object_permissions(request, customer)
        serializer = ContactInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = contact_record(
            actor=service_actor(request.user), customer=customer, **serializer.validated_data
        )
        contact = customer.contacts.select_related("staff", "store").get(pk=contact.pk)
        return Response(contact_body(contact), status=status.HTTP_201_CREATED)
