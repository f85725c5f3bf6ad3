"""Running an import in resumable batches: the same loop for a dry run and the real run.

A job is claimed by one worker with a conditional UPDATE and a heartbeat after every batch.
Each batch is one transaction that writes its rows' effects, their report lines and the new
cursor (`processed_rows`) together, so a worker killed anywhere leaves either the whole batch or
none of it; the sweeper hands a job whose heartbeat stopped to another worker, which skips the
rows already counted. Nothing is applied twice.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation

from crm.audit import audit_record
from crm.models import AuditAction

from .models import ImportJob, ImportRow, ImportStatus
from .reader import FileShape, iter_rows
from .sql import json_insert

logger = logging.getLogger(__name__)

# A data row's number is its line in the file (the header is line 1), as the office sees it.
FIRST_DATA_ROW = 2


@dataclass(slots=True)
class RowReport:
    """One report line as a processor returns it; the engine writes them in one INSERT.

    Plain, not an unsaved `ImportRow`: building a model instance (its foreign key's default
    included) cost more than parsing the row did.
    """

    row_no: int
    outcome: str
    customer_id: int | None = None
    changes: dict[str, Any] | None = None
    message: str = ""


class Processor(Protocol):
    def group_key(self, cells: list[Any]) -> Any:
        """Rows with the same key stay in one batch (the lines of one receipt)."""

    # Optional: `finished()`, called once the real run of the whole file has committed.

    def process(self, batch: Any, *, dry_run: bool) -> list[RowReport]:
        """Apply (or only judge) a batch; one report line (or an unsaved ImportRow) per outcome.

        The batch is the rows `(row number, cells)`, or what the processor's optional
        `prepare(rows)` made of them: `prepare` runs in the reading thread (see `_read_ahead`)
        and so must not touch the database.
        """


_PROCESSORS: dict[str, Callable[[ImportJob], Processor]] = {}


def register_processor(kind: str, factory: Callable[[ImportJob], Processor]) -> None:
    """Higher apps (sales: purchase history) register the processor of their kind of import."""
    _PROCESSORS[kind] = factory


def job_shape(job: ImportJob) -> FileShape:
    return FileShape(job.file_format, encoding=job.encoding, delimiter=job.delimiter)


def job_path(job: ImportJob) -> Path:
    return Path(job.file.path)


def job_data_rows(job: ImportJob) -> Iterator[tuple[int, list[Any]]]:
    rows = iter_rows(job_path(job), job_shape(job))
    next(rows, None)  # the header
    for offset, cells in enumerate(rows):
        yield FIRST_DATA_ROW + offset, cells


def _claim(job_id: int, token: str) -> bool:
    lease = timezone.now() - timedelta(seconds=settings.CLIENTELE_IMPORT_LEASE_SECONDS)
    return bool(
        ImportJob.objects.filter(
            Q(claimed_by="") | Q(heartbeat_at__lt=lease) | Q(heartbeat_at__isnull=True),
            pk=job_id,
            status__in=[ImportStatus.DRY_RUN, ImportStatus.RUNNING],
        ).update(claimed_by=token, heartbeat_at=timezone.now())
    )


def _batches(job: ImportJob, processor: Processor) -> Iterator[list[tuple[int, list[Any]]]]:
    size = settings.CLIENTELE_IMPORT_BATCH
    batch: list[tuple[int, list[Any]]] = []
    last_key: Any = object()
    # Read once: the rows done before this worker started (the count grows as it works).
    first_row = FIRST_DATA_ROW + job.processed_rows
    for row_no, cells in job_data_rows(job):
        if row_no < first_row:
            continue  # done by an earlier worker
        key = processor.group_key(cells)
        if len(batch) >= size and (key is None or key != last_key):
            yield batch
            batch = []
        batch.append((row_no, cells))
        last_key = key
    if batch:
        yield batch


_DONE = object()
READ_AHEAD_SWITCH_INTERVAL = 0.0005  # seconds


def _read_ahead(job: ImportJob, processor: Processor, depth: int = 2) -> Iterator[tuple[int, Any]]:
    """`(row count, batch)` pairs, read and prepared by a second thread while this one writes.

    An import alternates between Python (reading and parsing rows) and PostgreSQL (writing the
    batch); on the two cores of a small server they can run at once. While the main thread
    waits for the database (the GIL released), the reader parses the next batches. The reader
    never queries (a processor's `prepare` reads only what its constructor loaded), so the
    batch's transaction stays the one writer; its errors reach the caller here; it stops when
    the caller stops reading.
    """
    prepare = getattr(processor, "prepare", None)
    language = translation.get_language()
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            with translation.override(language):  # the report's messages, in the user's language
                for batch in _batches(job, processor):
                    item = (len(batch), prepare(batch) if prepare else batch)
                    if not offer(item):
                        return
            offer(_DONE)
        except BaseException as exc:  # handed to the caller, who raises it
            offer(exc)

    reader = threading.Thread(target=read, name=f"import-{job.pk}-reader", daemon=True)
    # The writing thread lets the GIL go at every statement and must win it back from the busy
    # reader to read the answer: at Python's 5 ms switch interval a round trip of 0.3 ms took
    # several ms, a dozen times per batch. A shorter interval while both run hands it back soon.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, READ_AHEAD_SWITCH_INTERVAL))
    reader.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(interval)


def _report_base(job_id: int, phase: str) -> dict[str, Any]:
    return {"job_id": job_id, "phase": phase, "customer_id": None, "changes": {}, "message": ""}


def _report_lines(rows: list[RowReport]) -> list[dict[str, Any]]:
    """Each report line's own values; the rest comes from `_report_base` (most lines of a
    first import are "created" with no changes and no message: three keys, not seven)."""
    lines = []
    for row in rows:
        line: dict[str, Any] = {"row_no": row.row_no, "outcome": str(row.outcome)}
        if row.customer_id is not None:
            line["customer_id"] = row.customer_id
        if row.changes:
            line["changes"] = row.changes
        if row.message:
            line["message"] = str(row.message)[:500]
        lines.append(line)
    return lines


def _add_counts(counts: dict[str, int], rows: list[RowReport]) -> dict[str, int]:
    counts = dict(counts)
    for row in rows:
        counts[row.outcome] = counts.get(row.outcome, 0) + 1
    return counts


class _TakenOver(Exception):
    """Another worker holds the job now: this batch's transaction is rolled back."""


# The batch a writing thread is on, for `previous_batch_committed` (overlapped writing only).
_writing = threading.local()


def previous_batch_committed() -> None:
    """Wait until the batch before the current one has committed, if it is still committing.

    With overlapped writing (`Processor.overlapping`) a batch's statements run while the
    previous batch's report and commit finish on another connection, so what that batch
    stored is not yet visible. A processor calls this before a step that must read it (the
    history's returns read the receipt they return, which an earlier batch may have stored);
    elsewhere, and in serial writing, it returns at once.
    """
    turns = getattr(_writing, "turns", None)
    if turns is not None:
        turns.wait("committed", _writing.seq - 1)


def _write_batch(
    job_id: int, token: str, processor: Processor, count: int, batch: Any, turns=None
) -> None:
    """One batch in one transaction: its rows' effects, report lines and the job's cursor.

    Serial writing locks the job row first. Overlapped writing (`turns` given) reads it, runs
    the processor, lets the next batch's processor start, and locks the row only for the
    cursor: that lock waits until the previous batch has committed, and the cursor found there
    must be where that batch left it, so batches still commit in the file's order.
    """
    with transaction.atomic():
        # The batch's rows, report lines and cursor commit together, so a commit lost in a
        # server crash loses them together and the resumed run redoes the batch: the import
        # need not wait for each commit's WAL flush (a tenth of its time).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        if turns is None:
            current = ImportJob.objects.select_for_update().get(pk=job_id)
            if current.claimed_by != token:
                raise _TakenOver
        else:
            # Read without the lock, checked again under it: a worker whose job was taken over
            # stops here rather than write beside the new one (whose rows would then wait).
            current = ImportJob.objects.get(pk=job_id)
            if current.claimed_by != token:
                raise _TakenOver
        try:
            rows = processor.process(batch, dry_run=current.dry_run)
        finally:
            if turns is not None:
                turns.done("processed", _writing.seq)
        json_insert(ImportRow, _report_lines(rows), _report_base(job_id, current.phase))
        if turns is not None:
            # The previous batch locks the row first (then this lock waits for its commit):
            # this batch may reach here before that one, having finished its statements later.
            turns.wait("locked", _writing.seq - 1)
            current = ImportJob.objects.select_for_update().get(pk=job_id)
            turns.done("locked", _writing.seq)
            if current.claimed_by != token:
                raise _TakenOver
            if current.processed_rows != _writing.expected:
                raise RuntimeError(
                    f"import {job_id}: the batch before row {current.processed_rows} did not "
                    "commit; this batch is not stored"
                )
        current.processed_rows += count
        current.counts = _add_counts(current.counts, rows)
        current.heartbeat_at = timezone.now()
        current.save(update_fields=["processed_rows", "counts", "heartbeat_at"])


class _Turns:
    """How far the batches have gone, for two writers: which have run their processor, which
    hold the job row (so that the next one's lock waits for their commit), which committed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._last = {"processed": -1, "locked": -1, "committed": -1}
        self.error: BaseException | None = None
        self.error_seq: int | None = None

    def done(self, what: str, seq: int) -> None:
        with self._cond:
            self._last[what] = max(self._last[what], seq)
            self._cond.notify_all()

    def fail(self, seq: int, exc: BaseException) -> None:
        with self._cond:
            if self.error_seq is None or seq < self.error_seq:
                self.error, self.error_seq = exc, seq
            self._cond.notify_all()

    def wait(self, what: str, seq: int) -> None:
        """Until batch `seq` has done `what`; raises if any batch failed meanwhile."""
        with self._cond:
            while self._last[what] < seq:
                if self.error is not None:
                    raise _Abandoned
                self._cond.wait()


class _Abandoned(Exception):
    """Another writer's batch failed: this one is rolled back and its writer stops."""


def _write_overlapped(
    job_id: int, token: str, processor: Processor, batches: Iterator[tuple[int, Any]], start: int
) -> bool:
    """Write the batches with two threads, each on its own connection, taking them in turn.

    A batch's processor starts when the previous batch's has finished (never beside it, so
    their statements cannot wait on each other in a cycle), while that batch writes its report
    lines and commits: on two cores PostgreSQL checks one batch's foreign keys at commit while
    the other batch is parsed and stored. Each batch is still one transaction and they commit in
    the file's order (see `_write_batch`), so a worker killed anywhere leaves a prefix of the
    file stored and counted, as with one writer. False when another worker took the job over.
    """
    turns = _Turns()
    language = translation.get_language()
    inboxes: list[queue.Queue] = [queue.Queue(maxsize=1), queue.Queue(maxsize=1)]
    taken_over = threading.Event()

    def write(inbox: queue.Queue) -> None:
        _writing.turns = turns
        try:
            with translation.override(language):
                while (item := inbox.get()) is not None:
                    seq, expected, count, batch = item
                    _writing.seq, _writing.expected = seq, expected
                    try:
                        turns.wait("processed", seq - 1)
                        _write_batch(job_id, token, processor, count, batch, turns)
                    except _Abandoned:
                        return
                    except _TakenOver:
                        taken_over.set()
                        turns.fail(seq, _Abandoned())
                        return
                    except BaseException as exc:
                        turns.fail(seq, exc)
                        return
                    turns.done("committed", seq)
        finally:
            _writing.turns = None
            connection.close()

    writers = [
        threading.Thread(target=write, args=(inbox,), name=f"import-{job_id}-writer-{n}")
        for n, inbox in enumerate(inboxes)
    ]
    for writer in writers:
        writer.start()
    try:
        expected = start
        for seq, (count, batch) in enumerate(batches):
            inbox = inboxes[seq % 2]
            while turns.error is None:
                try:
                    inbox.put((seq, expected, count, batch), timeout=0.2)
                    break
                except queue.Full:
                    continue
            if turns.error is not None:
                break
            expected += count
    finally:
        for inbox, writer in zip(inboxes, writers, strict=True):
            while writer.is_alive():
                try:
                    inbox.put(None, timeout=0.2)
                    break
                except queue.Full:
                    continue
        for writer in writers:
            writer.join()
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # stops the reading thread now, not when the generator is collected
    if taken_over.is_set():
        logger.warning("import %s was taken over; this worker stops", job_id)
        return False
    if turns.error is not None:
        raise turns.error
    return True


def import_execute(*, job_id: int, token: str | None = None) -> bool:
    """Claim the job and process every row not yet processed; False when another worker has it.

    Not atomic as a whole on purpose: each batch commits on its own (see the module docstring).
    """
    token = token or uuid.uuid4().hex
    if not _claim(job_id, token):
        return False
    job = ImportJob.objects.get(pk=job_id)
    # Report lines and errors are stored as text, in the language of whoever started the run.
    with translation.override(job.language or settings.LANGUAGE_CODE):
        return _execute(job, token)


ANALYZE_FIRST = 5_000


class _Statistics:
    """Fresh planner statistics for the tables an import grows, at 5,000 rows written and at
    every doubling after.

    A chain's first import fills empty tables, and autovacuum may not analyse them until the
    import is over: the look-ups of each batch are then planned for empty tables and, on
    embedded PostgreSQL 18, 100,000 customers cost 4x the server CPU (bench/README.md, session
    9). About six ANALYZEs per million rows, each a sample of 30,000 rows.
    """

    def __init__(self, processor: Processor, done: int) -> None:
        self.tables = (ImportRow._meta.db_table, *getattr(processor, "analyze_tables", ()))
        self.next_at = max(ANALYZE_FIRST, 2 * done)

    def after(self, done: int) -> None:
        if done < self.next_at:
            return
        self.next_at = 2 * done
        with connection.cursor() as cursor:
            names = ", ".join(connection.ops.quote_name(table) for table in self.tables)
            cursor.execute(f"ANALYZE {names}")
        logger.info("import: statistics refreshed at %s rows (%s)", done, ", ".join(self.tables))


def _execute(job: ImportJob, token: str) -> bool:
    job_id = job.pk
    processor = _PROCESSORS[job.kind](job)
    try:
        batches = _read_ahead(job, processor)
        # Two writers need their own transactions: inside a caller's (a test's), one writes.
        if getattr(processor, "overlapping", False) and not connection.in_atomic_block:
            if not _write_overlapped(job_id, token, processor, batches, job.processed_rows):
                return False
        else:
            statistics = _Statistics(processor, job.processed_rows)
            for count, batch in batches:
                try:
                    _write_batch(job_id, token, processor, count, batch)
                except _TakenOver:
                    logger.warning("import %s was taken over; this worker stops", job_id)
                    return False
                job.processed_rows += count
                statistics.after(job.processed_rows)
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        # The file's own fault (found past the preview's rows) reads as the form said it;
        # anything else is kept as it was raised, for the admin.
        error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        ImportJob.objects.filter(pk=job_id, claimed_by=token).update(
            status=ImportStatus.FAILED, error=error[:2000], claimed_by=""
        )
        raise
    if _finish(job_id, token) and not job.dry_run:
        finished = getattr(processor, "finished", None)
        if finished is not None:
            finished()
    return True


@transaction.atomic
def _finish(job_id: int, token: str) -> bool:
    """Close the job; False when another worker holds it now (it will close it)."""
    job = ImportJob.objects.select_for_update().get(pk=job_id)
    if job.claimed_by != token:
        return False
    job.status = ImportStatus.CHECKED if job.dry_run else ImportStatus.DONE
    job.finished_at = timezone.now()
    job.claimed_by = ""
    if job.total_rows is None or job.total_rows < job.processed_rows:
        job.total_rows = job.processed_rows
    job.save(update_fields=["status", "finished_at", "claimed_by", "total_rows"])
    if not job.dry_run:
        audit_record(
            actor=job.created_by,
            action=AuditAction.IMPORT,
            obj=job,
            kind=job.kind,
            file_name=job.file_name,
            file_hash=job.file_hash,
            rows=job.processed_rows,
            counts=job.counts,
            store=job.store_id,
        )
    return True


def stale_jobs() -> list[int]:
    """Jobs under way whose worker stopped beating (killed, or lost its claim)."""
    lease = timezone.now() - timedelta(seconds=settings.CLIENTELE_IMPORT_LEASE_SECONDS)
    return list(
        ImportJob.objects.filter(
            Q(claimed_by="") | Q(heartbeat_at__lt=lease) | Q(heartbeat_at__isnull=True),
            status__in=[ImportStatus.DRY_RUN, ImportStatus.RUNNING],
        ).values_list("pk", flat=True)
    )
