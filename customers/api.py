"""Customer endpoints of the REST API: till look-up and create, integration reads and edits.

Every read starts from `customers.access.visible_customers(request.user)` (or `lookup_customers` for
an exact phone/card at the till), so an invisible customer is a 404 like a missing one.
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django.conf import settings
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
from crm.serializers import MAX_ID
from customers.access import contact_details, lookup_customers, user_store_ids, visible_customers
from customers.disclosure import (
    ContactsCapReached,
    FullListNotPermitted,
    card_read,
    daily_allowance,
    list_contacts,
    taken_today,
)

from .duplicates.merge import card_alias_survivors, resolve_alias
from .models import Customer, CustomerPhone, Gender, LifecycleStage, Source
from .phones import try_normalize_phone
from .privacy.serializers import processing_body
from .privacy.services import record_from_api
from .serializers import (
    ContactInputSerializer,
    ContactOutputSerializer,
    CustomerCreateSerializer,
    CustomerLookupSerializer,
    CustomerOutputSerializer,
    CustomerUpdateSerializer,
    contact_body,
    customer_body,
    lookup_body,
)
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


CUSTOMER_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="Customer id.")


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
        parameters=[CUSTOMER_ID],
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
        parameters=[CUSTOMER_ID],
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
        parameters=[CUSTOMER_ID],
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
        parameters=[CUSTOMER_ID],
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
