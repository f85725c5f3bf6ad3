"""Customer import with real files: encodings, separators, mapping, dry run, policies, report,
idempotency, revert, permissions."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

from crm.models import AuditAction, AuditEvent
from customers.imports.models import ImportRow, ImportStatus
from customers.imports.report import report_xlsx
from customers.imports.services import import_revert
from customers.models import (
    ConsentEvent,
    Customer,
    CustomerPhone,
    CustomField,
    CustomFieldCategory,
    Source,
)
from tests.factories import CustomerFactory

from .conftest import make_csv, make_xlsx, outcomes, run, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def avg_check(db):
    category = CustomFieldCategory.objects.create(name="Покупки")
    return CustomField.objects.create(
        key="avg_check", name="Средний чек", type="number", category=category
    )


CSV_1251 = [
    [
        "Фамилия",
        "Имя",
        "Отчество",
        "Моб. телефон",
        "E-mail",
        "Дата рождения",
        "Пол",
        "Номер карты",
        "Город",
        "Средний чек",
        "Согласие на рассылку SMS",
    ],
    [
        "Иванова",
        "Мария",
        "Петровна",
        "8 (916) 123-45-67",
        "Maria@Mail.ru",
        "05.03.1985",
        "Ж",
        "100200",
        "Москва",
        "1 234,50",
        "да",
    ],
    ["Петров", "Пётр", "", "+7 903 765-43-21", "", "1979-11-30", "м", "", "Тверь", "99,9", "нет"],
    ["Сидоров", "Олег", "", "8 912 000 00 00 00", "", "", "", "", "", "", ""],
]


def test_cp1251_csv_with_semicolons_and_decimal_commas(admin_user, avg_check):
    job = upload(admin_user, "база.csv", make_csv(CSV_1251, encoding="cp1251"))
    assert (job.file_format, job.encoding, job.delimiter) == ("csv", "cp1251", ";")
    assert job.headers[0] == "Фамилия"
    assert job.mapping["3"] == "phone" and job.mapping["9"] == "custom:avg_check"
    assert job.mapping["10"] == "consent_sms"
    assert job.total_rows == 3

    job = run(job, admin_user, dry_run=True)
    assert job.status == ImportStatus.CHECKED
    assert Customer.objects.count() == 0, "a dry run writes no card"
    report = outcomes(job, "dry")
    assert report[2][0] == report[3][0] == "created"
    assert report[4][0] == "error" and "Phone" in report[4][1]
    assert job.counts == {"created": 2, "error": 1}

    job = run(job, admin_user, dry_run=False)
    assert job.status == ImportStatus.DONE
    maria = Customer.objects.get(surname="Иванова")
    assert maria.phone == "+79161234567"
    assert list(maria.phones.values_list("number", flat=True)) == ["+79161234567"]
    assert maria.email == "maria@mail.ru"
    assert maria.birth_date == dt.date(1985, 3, 5) and maria.gender == "f"
    assert maria.card_number == "100200" and maria.city == "Москва"
    assert maria.custom_fields == {"avg_check": "1234.50"}
    assert maria.source == Source.IMPORT and maria.created_by == admin_user
    # Consent only from the explicit column, recorded as coming from this import.
    assert maria.consent_sms is True and maria.consent_email is False
    event = ConsentEvent.objects.get(customer=maria)
    assert (event.channel, event.granted, event.source) == ("sms", True, "import")
    assert str(job.pk) in event.note
    petrov = Customer.objects.get(surname="Петров")
    assert petrov.first_name == "Пётр" and petrov.consent_sms is False
    assert petrov.birth_date == dt.date(1979, 11, 30)
    audit = AuditEvent.objects.get(action=AuditAction.IMPORT)
    assert audit.details["file_hash"] == job.file_hash
    assert audit.details["counts"] == {"created": 2, "error": 1}
    assert AuditEvent.objects.filter(action=AuditAction.CUSTOMER_CREATE).count() == 2


def _xlsx_rows():
    return [
        ["ФИО", "Телефон", "E-mail", "Дата рождения", "Карта"],
        ["Кузнецова Анна Сергеевна", "8 (916) 111-22-01", "anna@example.ru", "12.04.1990", "A-1"],
        ["Смирнов Игорь", "+7 916 111 22 02", "", dt.datetime(1988, 1, 31), ""],  # noqa: DTZ001 - an Excel cell,
        ["Орлова Вера Ивановна", "79161112203", "", 32874, ""],  # an Excel serial: 1990-01-01
        ["Лебедев Павел", "9161112204", "", "1975-06-15", ""],
        ["Зайцева Ольга", "8-916-111-22-05", "olga@example", "", ""],
        ["Кузнецова А. С.", "+79161112201", "", "", ""],  # row 2 again, another spelling
    ]


def test_xlsx_full_names_dates_phones_duplicates_and_bad_email(admin_user):
    job = upload(admin_user, "clients.xlsx", make_xlsx(_xlsx_rows()))
    assert job.file_format == "xlsx"
    assert job.mapping == {
        "0": "full_name",
        "1": "phone",
        "2": "email",
        "3": "birth_date",
        "4": "card_number",
    }
    job = run(job, admin_user, dry_run=True)
    report = outcomes(job, "dry")
    assert [report[n][0] for n in range(2, 8)] == [
        "created",
        "created",
        "created",
        "created",
        "error",
        "skipped",
    ]
    assert report[6][1].startswith("Email:")
    assert report[7][1] == "Same customer as row 2 of this file."

    job = run(job, admin_user, dry_run=False)
    assert Customer.objects.count() == 4
    anna = Customer.objects.get(phone="+79161112201")
    assert (anna.surname, anna.first_name, anna.patronymic) == ("Кузнецова", "Анна", "Сергеевна")
    assert anna.birth_date == dt.date(1990, 4, 12)
    assert Customer.objects.get(phone="+79161112202").birth_date == dt.date(1988, 1, 31)
    assert Customer.objects.get(phone="+79161112203").birth_date == dt.date(1990, 1, 1)
    assert Customer.objects.get(phone="+79161112204").birth_date == dt.date(1975, 6, 15)
    assert set(CustomerPhone.objects.values_list("number", flat=True)) == {
        f"+7916111220{i}" for i in range(1, 5)
    }


def test_dry_run_report_xlsx_keeps_the_original_columns_plus_the_outcome(admin_user):
    from openpyxl import load_workbook

    job = run(upload(admin_user, "clients.xlsx", make_xlsx(_xlsx_rows())), admin_user, dry_run=True)
    path = report_xlsx(job=job, phase="dry")
    sheet = load_workbook(path, read_only=True).worksheets[0]
    lines = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert lines[0] == [
        "Row",
        "ФИО",
        "Телефон",
        "E-mail",
        "Дата рождения",
        "Карта",
        "Outcome",
        "Details",
    ]
    assert len(lines) == 7
    assert lines[1][:3] == [2, "Кузнецова Анна Сергеевна", "8 (916) 111-22-01"]
    # A dry run's report says what the run would do.
    assert lines[1][-2] == "Would create"
    assert lines[5][-2] == "Error" and lines[5][-1].startswith("Email:")
    assert lines[6][-2] == "Would skip"


def test_the_same_file_twice_changes_nothing_the_second_time(admin_user):
    content = make_xlsx(_xlsx_rows())
    run(upload(admin_user, "a.xlsx", content), admin_user, dry_run=False)
    before = list(Customer.objects.order_by("pk").values())
    updates = AuditEvent.objects.filter(action=AuditAction.CUSTOMER_UPDATE).count()
    second = run(upload(admin_user, "a.xlsx", content), admin_user, dry_run=False)
    assert second.counts == {"unchanged": 4, "skipped": 1, "error": 1}
    assert list(Customer.objects.order_by("pk").values()) == before
    assert AuditEvent.objects.filter(action=AuditAction.CUSTOMER_UPDATE).count() == updates


def test_update_policy_fills_empty_fields_and_overwrites_only_chosen_ones(admin_user):
    card = CustomerFactory(
        surname="Старая", first_name="Анна", city="", phone_number="+79161112201"
    )
    rows = [["Фамилия", "Телефон", "Город", "Адрес"], ["Новая", "8 916 111-22-01", "Казань", ""]]
    job = run(upload(admin_user, "u.csv", make_csv(rows)), admin_user, dry_run=True)
    row = ImportRow.objects.get(job=job, phase="dry")
    assert row.outcome == "updated" and set(row.changes) == {"city"}
    job = run(job, admin_user, dry_run=False)
    card.refresh_from_db()
    assert (card.surname, card.city) == ("Старая", "Казань")

    card.address = "ул. Ленина, 1"
    card.save()
    job = upload(admin_user, "u2.csv", make_csv(rows))
    options = {**job.options, "overwrite": ["surname", "address"]}
    run(job, admin_user, dry_run=False, options=options)
    card.refresh_from_db()
    assert card.surname == "Новая"
    assert card.address == "ул. Ленина, 1", "an empty cell clears nothing by default"


def test_create_only_and_update_only_policies(admin_user):
    CustomerFactory(surname="Есть", phone_number="+79161112201")
    rows = [
        ["Фамилия", "Телефон", "Город"],
        ["Есть", "89161112201", "Омск"],
        ["Нет", "89161112299", "Омск"],
    ]
    job = upload(admin_user, "p.csv", make_csv(rows))
    job = run(job, admin_user, dry_run=True, options={**job.options, "policy": "create"})
    assert [o for o, _m in outcomes(job, "dry").values()] == ["skipped", "created"]
    job = upload(admin_user, "p.csv", make_csv(rows))
    job = run(job, admin_user, dry_run=True, options={**job.options, "policy": "update"})
    assert [o for o, _m in outcomes(job, "dry").values()] == ["updated", "skipped"]


def test_match_order_is_configurable(admin_user):
    CustomerFactory(surname="ПоТелефону", email="", phone_number="+79161112201")
    by_email = CustomerFactory(surname="ПоПочте", email="x@example.ru")
    rows = [["Телефон", "Email", "Город"], ["89161112201", "x@example.ru", "Уфа"]]
    job = upload(admin_user, "m.csv", make_csv(rows))
    job = run(
        job,
        admin_user,
        dry_run=True,
        options={**job.options, "match_order": ["email", "phone", "card"]},
    )
    # The phone belongs to another card: the row cannot update the email's card.
    assert outcomes(job, "dry")[2][0] == "error"
    rows = [["Email", "Город"], ["X@example.ru", "Уфа"]]
    job = run(upload(admin_user, "m2.csv", make_csv(rows)), admin_user, dry_run=False)
    by_email.refresh_from_db()
    assert by_email.city == "Уфа"


def test_revert_removes_untouched_created_cards_and_restores_overwritten_fields(admin_user):
    card = CustomerFactory(surname="Было", city="Пермь", phone_number="+79161112209")
    rows = [
        ["Фамилия", "Телефон", "Город"],
        ["Один", "89161112201", "Омск"],
        ["Два", "89161112202", "Омск"],
        ["Было", "89161112209", "Сочи"],
    ]
    job = upload(admin_user, "r.csv", make_csv(rows))
    job = run(job, admin_user, dry_run=False, options={**job.options, "overwrite": ["city"]})
    card.refresh_from_db()
    assert card.city == "Сочи"
    two = Customer.objects.get(surname="Два")
    # Someone edits one of the new cards after the import: the revert must keep it.
    Customer.objects.filter(pk=two.pk).update(updated_at=job.finished_at + dt.timedelta(minutes=1))
    result = import_revert(actor=admin_user, job=job)
    assert not Customer.objects.filter(surname="Один").exists()
    assert result["kept"] == [two.pk]
    card.refresh_from_db()
    assert card.city == "Пермь"
    job.refresh_from_db()
    assert job.status == ImportStatus.REVERTED
    assert AuditEvent.objects.filter(action=AuditAction.IMPORT_REVERT).count() == 1


def test_revert_is_refused_after_the_window(admin_user, settings):
    job = run(
        upload(admin_user, "r.csv", make_csv([["Фамилия"], ["Один"]])), admin_user, dry_run=False
    )
    job.finished_at -= dt.timedelta(days=settings.CLIENTELE_IMPORT_REVERT_DAYS + 1)
    job.save()
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        import_revert(actor=admin_user, job=job)


def test_import_needs_the_permission(manager_a, marketer):
    for user in (manager_a, marketer):
        with pytest.raises(PermissionDenied):
            upload(user, "a.csv", make_csv([["Фамилия"], ["Один"]]))


def test_store_manager_imports_into_own_stores_only(manager_a, store_a, store_b):
    manager_a.user_permissions.add(Permission.objects.get(codename="import_customers"))
    manager_a = type(manager_a).objects.get(pk=manager_a.pk)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        upload(manager_a, "a.csv", make_csv([["Фамилия"], ["Один"]]), store=store_b)
    rows = [["Фамилия", "Магазин"], ["Свой", ""], ["Чужой", store_b.code]]
    job = run(upload(manager_a, "a.csv", make_csv(rows), store=store_a), manager_a, dry_run=False)
    assert Customer.objects.get(surname="Свой").home_store == store_a
    report = outcomes(job, "run")
    assert report[3][0] == "error" and "own stores" in report[3][1]
    assert not Customer.objects.filter(surname="Чужой").exists()


def test_utf8_bom_and_comma_and_tab_separators_are_detected(admin_user):
    rows = [["Surname", "First name", "Phone"], ["Ivanov", "Ivan", "+7 916 111-22-01"]]
    for encoding, delimiter in (("utf-8-sig", ","), ("utf-8", "\t")):
        job = upload(admin_user, "a.csv", make_csv(rows, encoding=encoding, delimiter=delimiter))
        assert job.delimiter == delimiter
        assert job.mapping == {"0": "surname", "1": "first_name", "2": "phone"}


def test_saved_mapping_is_reused(admin_user):
    from customers.imports.services import mapping_save

    rows = [["Клиент-фамилия", "Тел. сотовый"], ["Один", "89161112201"]]
    job = upload(admin_user, "a.csv", make_csv(rows))
    assert job.mapping == {"0": "", "1": ""}
    from customers.imports.services import import_configure

    import_configure(
        actor=admin_user, job=job, mapping={"0": "surname", "1": "phone"}, options=job.options
    )
    job.refresh_from_db()
    saved = mapping_save(actor=admin_user, job=job, name="Старая CRM")
    from django.core.files.uploadedfile import SimpleUploadedFile

    from customers.imports.services import import_upload

    again = import_upload(
        actor=admin_user,
        kind="customers",
        upload=SimpleUploadedFile("b.csv", make_csv(rows)),
        saved_mapping=saved,
    )
    assert again.mapping == {"0": "surname", "1": "phone"}


def test_a_broken_file_is_a_form_error_not_a_crash(admin_user, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(admin_user)
    response = client.post(
        "/customers/imports/",
        {"kind": "customers", "file": SimpleUploadedFile("x.xlsx", b"PK\x03\x04garbage")},
    )
    assert response.status_code == 400
    assert 'data-error-for="file"' in response.content.decode()


def test_import_pages_are_404_for_users_without_the_permission(client, manager_a, admin_user):
    job = upload(admin_user, "a.csv", make_csv([["Фамилия"], ["Один"]]))
    client.force_login(manager_a)
    assert client.get("/customers/imports/").status_code == 404
    assert client.get(f"/customers/imports/{job.pk}/").status_code == 404


def test_import_page_flow_and_report_download(client, admin_user, django_assert_max_num_queries):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from customers.imports.engine import import_execute

    client.force_login(admin_user)
    response = client.post(
        "/customers/imports/",
        {
            "kind": "customers",
            "file": SimpleUploadedFile("c.xlsx", make_xlsx(_xlsx_rows())),
        },
    )
    assert response.status_code == 302
    url = response["Location"]
    page = client.get(url)
    assert "Кузнецова Анна Сергеевна" in page.content.decode()  # the preview
    data = {
        f"col_{i}": t for i, t in enumerate(["full_name", "phone", "", "birth_date", "card_number"])
    }
    data.update(policy="both", match_order="phone,card,email", action="dry_run")
    assert client.post(url, data).status_code == 302
    job_id = int(url.rstrip("/").split("/")[-1])
    assert import_execute(job_id=job_id)
    with django_assert_max_num_queries(12):
        page = client.get(url)
    body = page.content.decode()
    assert 'data-outcome="created"' in body
    report = client.get(f"{url}report.xlsx?phase=dry")
    assert report.status_code == 200
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(b"".join(report.streaming_content))).worksheets[0]
    assert sheet.max_row == 7


def test_rows_with_different_columns_filled_keep_each_its_own_values(admin_user):
    # New cards travel as the batch's shared columns plus each row's own: a value one row has
    # and the next lacks must not leak or vanish, and defaults fill what no row gives.
    content = make_csv(
        [
            ["Фамилия", "Имя", "Телефон", "Дата рождения", "Город", "Согласие на рассылку SMS"],
            ["Аникина", "Анна", "+79161110001", "01.02.1990", "", "да"],
            ["Борисов", "Борис", "", "", "Тула", ""],
            ["Васина", "Вера", "8 916 111-00-03", "", "", "нет"],
        ]
    )
    job = run(upload(admin_user, "mixed.csv", content), admin_user, dry_run=False)

    assert job.counts == {"created": 3}
    anna, boris, vera = (Customer.objects.get(surname=s) for s in ("Аникина", "Борисов", "Васина"))
    assert (anna.birth_date, anna.city, anna.phone, anna.consent_sms) == (
        dt.date(1990, 2, 1),
        "",
        "+79161110001",
        True,
    )
    assert (boris.birth_date, boris.city, boris.phone, boris.consent_sms) == (
        None,
        "Тула",
        "",
        False,
    )
    assert boris.phones.count() == 0 and boris.source == "import" and boris.custom_fields == {}
    assert (vera.phone, vera.consent_sms) == ("+79161110003", False)
    assert list(vera.phones.values_list("number", "is_primary", "kind")) == [
        ("+79161110003", True, "mobile")
    ]


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Enter a valid email address"), ("ru", "Введите правильный адрес электронной почты")],
)
def test_a_row_error_is_reported_in_the_uploaders_language(admin_user, language, expected):
    # Rows are parsed in the engine's reading thread, which speaks the language of the run
    # (a new thread would otherwise speak the site's default, Russian).
    from django.utils import translation

    content = make_csv([["Фамилия", "E-mail"], ["Аникина", "not-an-email"]])
    with translation.override(language):
        job = run(upload(admin_user, "bad.csv", content), admin_user, dry_run=True)

    outcome, message = outcomes(job, "dry")[2]
    assert outcome == "error"
    assert expected in message, message


def test_an_unreadable_file_fails_the_job_with_the_reading_error(admin_user):
    from django.core.exceptions import ValidationError

    from customers.imports.engine import import_execute
    from customers.imports.services import import_start

    job = upload(admin_user, "ok.csv", make_csv([["Фамилия"], ["Аникина"]]))
    import_start(actor=admin_user, job=job, dry_run=True)
    # The stored file is replaced by a damaged archive after the upload was checked.
    with open(job.file.path, "wb") as handle:
        handle.write(b"PK\x03\x04 not a zip")
    job.file_format = "xlsx"
    job.save(update_fields=["file_format"])

    with pytest.raises(ValidationError):
        import_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and ImportRow.objects.filter(job=job).count() == 0
    # The message the form would have given, not the exception's repr.
    assert job.error and "{" not in job.error and "'file'" not in job.error


def test_two_rows_matching_one_card_by_different_keys_update_it_in_turn(admin_user):
    """The batch reads its cards at once; the second row sees what the first one wrote."""
    card = CustomerFactory(
        surname="Одна", city="", address="", email="one@example.ru", phone_number="+79161112201"
    )
    CustomerPhone.objects.create(customer=card, number="+79161112202", is_primary=False)
    other = CustomerFactory(surname="Другая", city="", phone_number="+79161112299")
    rows = [
        ["Телефон", "E-mail", "Город", "Адрес"],
        ["8 916 111-22-02; 8 916 111-22-03", "", "Казань", ""],
        ["8 916 111-22-04", "ONE@example.ru", "Омск", "ул. Ленина, 1"],
        ["8 916 111-22-99", "", "Тверь", ""],
    ]
    job = run(upload(admin_user, "two.csv", make_csv(rows)), admin_user, dry_run=False)
    assert [o for o, _m in outcomes(job, "run").values()] == ["updated", "updated", "updated"]
    changes = {r.row_no: r.changes for r in job.rows.filter(phase="run")}
    assert changes[2]["city"] == ["", "Казань"]
    # The city is no longer empty when row 3 comes, and the phone row 2 added is kept.
    assert set(changes[3]) == {"address", "phones"}
    assert changes[3]["phones"][1] == [
        "+79161112201",
        "+79161112202",
        "+79161112203",
        "+79161112204",
    ]
    card.refresh_from_db()
    other.refresh_from_db()
    assert (card.city, card.address, other.city) == ("Казань", "ул. Ленина, 1", "Тверь")
    assert list(card.phones.values_list("number", flat=True)) == [
        "+79161112201",
        "+79161112202",
        "+79161112203",
        "+79161112204",
    ]


def test_deleting_a_job_deletes_its_report_rows_without_a_database_reference(admin_user):
    """The report rows' reference to their job is Django's, not a foreign key checked per row."""
    from django.db import connection

    job = run(
        upload(admin_user, "a.csv", make_csv([["ФИО"], ["Орлова Вера"], ["Орлов Игорь"]])),
        admin_user,
        dry_run=True,
    )
    assert ImportRow.objects.filter(job=job).count() == 2
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'customers_importrow'::regclass "
            "AND contype = 'f'"
        )
        assert cursor.fetchone()[0] == 0
    job.delete()
    assert not ImportRow.objects.filter(job_id=job.pk).exists()
