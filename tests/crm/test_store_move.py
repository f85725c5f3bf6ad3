"""`Store` moved from sales to crm without a data change: same table, and the roles keep their
store permissions because the content type was renamed, not recreated."""

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from crm.models import Store
from crm.roles import ADMINISTRATOR, SALES_ASSOCIATE


def test_store_keeps_its_table():
    assert Store._meta.app_label == "crm"
    assert Store._meta.db_table == "sales_store"


@pytest.mark.django_db
def test_roles_keep_the_store_permissions_under_the_crm_label():
    assert not ContentType.objects.filter(app_label="sales", model="store").exists()
    store_type = ContentType.objects.get(app_label="crm", model="store")
    associate = Group.objects.get(name=SALES_ASSOCIATE)
    admin = Group.objects.get(name=ADMINISTRATOR)
    assert associate.permissions.filter(content_type=store_type, codename="view_store").exists()
    assert set(
        admin.permissions.filter(content_type=store_type).values_list("codename", flat=True)
    ) >= {"view_store", "add_store", "change_store"}


@pytest.mark.django_db
def test_foreign_keys_still_point_at_the_same_table():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = 'sales_store'::regclass"
        )
        assert cursor.fetchone()[0] >= 8
