"""factory_boy factories for the core models."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from crm.models import StaffProfile, Store
from customers.models import Contact, Customer, CustomerPhone
from sales.models import Category, Product, Receipt, ReceiptLine


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"store-{n}")
    name = factory.Sequence(lambda n: f"Магазин {n}")
    city = "Москва"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))

    @factory.post_generation
    def stores(self, create, extracted, **kwargs):
        if create and extracted is not None:
            profile, _ = StaffProfile.objects.get_or_create(user=self)
            profile.stores.set(extracted)
        if create:
            self.save()


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer
        skip_postgeneration_save = True

    surname = factory.Iterator(["Иванова", "Петров", "Сидорова", "Кузнецов", "Смирнова"])
    first_name = factory.Iterator(["Анна", "Иван", "Мария", "Сергей", "Елена"])
    patronymic = factory.Iterator(["Сергеевна", "Петрович", "Ивановна", "Андреевич", "Олеговна"])
    email = factory.Sequence(lambda n: f"customer{n}@example.ru")
    birth_date = dt.date(1985, 3, 14)
    home_store = factory.SubFactory(StoreFactory)

    @factory.post_generation
    def phone_number(self, create, extracted, **kwargs):
        # A unique valid Moscow mobile per customer unless one is given.
        number = extracted or f"+7916{7000000 + self.pk:07d}"
        if create:
            CustomerPhone.objects.create(customer=self, number=number, is_primary=True)
            Customer.objects.filter(pk=self.pk).update(phone=number)
            self.phone = number


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("name", "parent")

    name = factory.Sequence(lambda n: f"Категория {n}")
    parent = None


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    name = factory.Sequence(lambda n: f"Товар {n}")
    category = factory.SubFactory(CategoryFactory)
    price = Decimal("1000.00")
    cost = Decimal("600.00")


class ReceiptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Receipt

    store = factory.SubFactory(StoreFactory)
    pos_receipt_id = factory.Sequence(lambda n: f"R-{n:08d}")
    purchased_at = factory.LazyFunction(timezone.now)
    total = Decimal("1000.00")


class ReceiptLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReceiptLine

    receipt = factory.SubFactory(ReceiptFactory)
    line_no = factory.Sequence(lambda n: n % 30000 + 1)
    product = factory.SubFactory(ProductFactory)
    quantity = Decimal("1")
    unit_price = Decimal("1000.00")
    unit_cost = Decimal("600.00")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    at = factory.LazyFunction(timezone.now)
    channel = "phone"
    direction = "out"
    topic = "Приглашение на распродажу"
