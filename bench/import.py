"""Import benchmark: customer rows and receipt lines from CSV/XLSX through the import engine,
beside PostgreSQL COPY of the same rows into tables shaped like ours.

By default (what `make bench` runs) the issue's sizes: 100,000 customer rows from CSV, then
1,000,000 receipt lines from CSV (targets: >= 5,000 customer rows/s and >= 20,000 receipt
lines/s on the 2-core reference machine), then as many customers from XLSX (other people; the
file is written by openpyxl's write-only mode, so its strings are inline, and read by
`customers.imports.xlsx`, whose equivalence with openpyxl's reading is tested).
`--quick` uses 5,000 customers and 20,000 lines. The engine runs in this process, exactly the
Celery task's body. Prints rows/s, COPY rows/s of the same rows, the ratio, and the peak
memory of the process after each step (flat: files are streamed, work is batched).

Run as `.venv/bin/python bench/import.py [--quick] [--customers-only] [--customers N]
[--history-only] [--lines N]` with DATABASE_URL set (`--history-only` skips the XLSX step; the
customers CSV step stays, the history's buyers). CPU is given beside each history run's wall
time: this process's, and the database's PostgreSQL backends' (sampled, see `_ServerCpu`).
`BENCH_EXPERIMENT_SQL` runs SQL on the scratch database after migrating (to try an index or
constraint change before writing its migration).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import recreate_database, scratch_urls, setup_django  # noqa: E402

DB_NAME = "clientele_bench_import"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def customer_rows(n: int, first: int = 0):
    yield [
        "Фамилия",
        "Имя",
        "Отчество",
        "Телефон",
        "E-mail",
        "Дата рождения",
        "Пол",
        "Карта",
        "Город",
        "Согласие на рассылку SMS",
    ]
    for i in range(first, first + n):
        yield [
            f"Фамилия{i}",
            "Мария",
            "Ивановна",
            f"8 916 {1000000 + i:07d}",
            f"c{i}@example.ru",
            f"{1 + i % 28:02d}.{1 + i % 12:02d}.{1950 + i % 50}",
            "Ж" if i % 2 else "М",
            f"CARD{i:08d}",
            "Москва",
            "да" if i % 3 else "нет",
        ]


def write_csv(path: Path, rows) -> None:
    with open(path, "w", encoding="cp1251", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)


def write_xlsx(path: Path, rows) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in rows:
        sheet.append(row)
    book.save(path)


def history_rows(n_lines: int, n_customers: int, store_code: str):
    yield [
        "Магазин",
        "Дата",
        "Номер чека",
        "Телефон",
        "Артикул",
        "Товар",
        "Категория",
        "Количество",
        "Цена",
        "Себестоимость",
        "Скидка",
    ]
    start = dt.datetime(2024, 1, 1, 10, 0)  # noqa: DTZ001 - a file's local time
    for line in range(n_lines):
        receipt = line // 3
        customer = receipt % n_customers
        at = start + dt.timedelta(minutes=receipt)
        sku = line % 500
        yield [
            store_code,
            at.strftime("%d.%m.%Y %H:%M"),
            f"R{receipt:08d}",
            f"+7916{1000000 + customer:07d}",
            f"SKU-{sku}",
            f"Товар {sku}",
            "Одежда/Разное",
            "1",
            f"{100 + sku},50",
            f"{50 + sku},00",
            "0",
        ]


class _ServerCpu:
    """CPU seconds of this database's PostgreSQL backends over a step (`/proc/<pid>/stat`),
    sampled by a thread every 0.2 s: a step's writers may open and close connections of their
    own, whose last reading is kept (at most 0.2 s of each one's end is missed). 0 when the
    server's processes are not readable from here."""

    def __init__(self) -> None:
        import threading

        from django.db import connection

        self._connection = connection
        self._seen: dict[int, float] = {}
        self._start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._pids: list[int] = []
        self._sample()
        self._start = dict(self._seen)
        if not os.environ.get("BENCH_NO_SERVER_CPU"):
            self._thread.start()

    def _sample(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            pids = [row[0] for row in cursor.fetchall()]
        tick = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self._seen[pid] = (int(fields[11]) + int(fields[12])) / tick

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(0.2):
                self._sample()
        finally:
            connection.close()

    def stop(self) -> float:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._sample()
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._seen.items())


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_job(user, path: Path, kind: str, store=None):
    from django.core.files.uploadedfile import UploadedFile

    from customers.imports.engine import import_execute
    from customers.imports.services import import_start, import_upload

    started = time.perf_counter()
    # Streamed from disk like a large upload (Django spools those to a file), so the file is
    # never held in this process's memory and the peak RSS is the engine's.
    with open(path, "rb") as handle:
        upload = UploadedFile(handle, name=path.name, size=path.stat().st_size)
        job = import_upload(actor=user, kind=kind, store=store, upload=upload)
    uploaded = time.perf_counter()
    import_start(actor=user, job=job, dry_run=False)
    cpu, server = _own_cpu(), _ServerCpu()
    import_execute(job_id=job.pk)
    done = time.perf_counter()
    run_job.cpu = (_own_cpu() - cpu, server.stop())
    job.refresh_from_db()
    return job, uploaded - started, done - uploaded


def copy_rate(table_like: str, columns: list[str], rows, count: int) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        # The same columns and types as ours, without our indexes and triggers: the raw engine.
        cursor.execute(
            f"DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy AS "
            f"SELECT {', '.join(columns)} FROM {table_like} WITH NO DATA"
        )
        raw = cursor.connection
        started = time.perf_counter()
        with (
            raw.cursor() as pg,
            pg.copy(f"COPY bench_copy ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return count / elapsed


CUSTOMER_COLUMNS = [
    "surname",
    "first_name",
    "patronymic",
    "phone",
    "email",
    "birth_date",
    "gender",
    "card_number",
    "city",
    "consent_sms",
    "source",
    "lifecycle_stage",
    "created_at",
    "updated_at",
]
LINE_COLUMNS = [
    "receipt_id",
    "line_no",
    "product_id",
    "quantity",
    "unit_price",
    "discount",
    "unit_cost",
]


def customers_copy_rate(count: int) -> float:
    now = dt.datetime.now(dt.UTC)
    rows = (
        [
            f"Фамилия{i}",
            "Мария",
            "Ивановна",
            f"+7917{i:07d}",
            f"d{i}@example.ru",
            dt.date(1980, 1, 1),
            "f",
            f"COPY{i:08d}",
            "Москва",
            True,
            "import",
            "lead",
            now,
            now,
        ]
        for i in range(count)
    )
    return copy_rate("customers_customer", CUSTOMER_COLUMNS, rows, count)


def bench_customers(user, tmp: Path, count: int, first: int, fmt: str) -> None:
    path = tmp / f"customers-{first}.{fmt}"
    (write_xlsx if fmt == "xlsx" else write_csv)(path, customer_rows(count, first))
    job, upload_s, run_s = run_job(user, path, "customers")
    rate = count / run_s
    copy = customers_copy_rate(count)
    print(
        f"customers {fmt.upper()}: {count:,} rows in {run_s:.1f} s (+{upload_s:.1f} s upload "
        f"and count) = {rate:,.0f} rows/s; COPY {copy:,.0f} rows/s; ours/COPY {rate / copy:.3f}; "
        f"target >= 5,000 rows/s {'met' if rate >= 5000 else 'NOT met'}; counts {job.counts}; "
        f"CPU: this process {run_job.cpu[0]:.1f} s, PostgreSQL {run_job.cpu[1]:.1f} s; "
        f"peak RSS {peak_mb():.0f} MB",
        flush=True,
    )


def bench_history(user, tmp: Path, store, n_lines: int, n_customers: int) -> None:
    from sales.models import ReceiptLine

    path = tmp / "history.csv"
    write_csv(path, history_rows(n_lines, n_customers, store.code))
    job, upload_s, run_s = run_job(user, path, "history", store=store)
    rate = n_lines / run_s
    product = ReceiptLine.objects.values_list("product_id", flat=True).first()
    receipt = ReceiptLine.objects.values_list("receipt_id", flat=True).first()
    rows = ([receipt, (i % 30000) + 1, product, 1, "100.50", "0", "50.00"] for i in range(n_lines))
    copy = copy_rate("sales_receiptline", LINE_COLUMNS, rows, n_lines)
    print(
        f"history CSV: {n_lines:,} receipt lines in {run_s:.1f} s (+{upload_s:.1f} s upload and "
        f"count) = {rate:,.0f} lines/s; COPY {copy:,.0f} rows/s; ours/COPY {rate / copy:.3f}; "
        f"target >= 20,000 lines/s {'met' if rate >= 20000 else 'NOT met'}; receipts "
        f"{job.counts}; CPU: this process {run_job.cpu[0]:.1f} s, PostgreSQL "
        f"{run_job.cpu[1]:.1f} s; peak RSS {peak_mb():.0f} MB",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5,000 customers, 20,000 lines")
    parser.add_argument("--full-size", action="store_true", help="the default; kept for scripts")
    parser.add_argument(
        "--customers-only", action="store_true", help="only the customers CSV step (no history)"
    )
    parser.add_argument("--customers", type=int, help="customer rows of the CSV step")
    parser.add_argument("--lines", type=int, help="receipt lines of the history step")
    parser.add_argument(
        "--history-only",
        action="store_true",
        help="the history step only (its customers are still imported first, as its buyers)",
    )
    args = parser.parse_args()
    n_customers, n_lines = (5_000, 20_000) if args.quick else (100_000, 1_000_000)
    if args.customers:
        n_customers = args.customers
    if args.lines:
        n_lines = args.lines
    n_xlsx = n_customers

    admin_url, url = scratch_urls(DB_NAME)
    recreate_database(admin_url, DB_NAME)
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    os.environ["CLIENTELE_VAR_DIR"] = str(tmp)
    try:
        setup_django(url)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.utils import translation

        translation.activate("en")
        call_command("migrate", verbosity=0)
        if os.environ.get("BENCH_EXPERIMENT_SQL"):
            # For trying a schema change on the scratch database only, before a migration.
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(os.environ["BENCH_EXPERIMENT_SQL"])
        from crm.models import Store

        store = Store.objects.create(code="bench", name="Bench")
        user = get_user_model().objects.create_superuser("bench", "b@example.ru", "x")
        print(f"peak RSS before importing {peak_mb():.0f} MB", flush=True)
        bench_customers(user, tmp, n_customers, 0, "csv")
        if args.customers_only:
            return 0
        bench_history(user, tmp, store, n_lines, n_customers)
        if not args.history_only:
            bench_customers(user, tmp, n_xlsx, n_customers, "xlsx")
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(admin_url, DB_NAME, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
