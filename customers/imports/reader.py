"""Reading uploaded files row by row, as Russian offices write them.

CSV: UTF-8 with or without BOM, else Windows-1251; the separator (`;`, `,`, tab) is the one
that splits the header and the first lines into the same number of columns. XLSX: streamed by
`xlsx.sheet_rows` (expat), so memory stays flat whatever the number of rows. Both yield lists
of cells (text for CSV; text, numbers, dates for XLSX), the header first.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .xlsx import count_sheet_rows, sheet_rows

SNIFF_BYTES = 64 * 1024
DELIMITERS = (";", ",", "\t")


@dataclass(frozen=True)
class FileShape:
    file_format: str  # csv | xlsx
    encoding: str = ""
    delimiter: str = ""


def detect_encoding(sample: bytes) -> str:
    """`utf-8-sig` when the sample decodes as UTF-8 (BOM or not), else Windows-1251."""
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        # A multi-byte character cut at the sample's end is not a decoding failure.
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:
            return "cp1251"
    return "utf-8-sig"


def detect_delimiter(text: str) -> str:
    """The separator that gives the header and the next lines the same, largest, column count."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    best, best_score = ";", -1
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for n in counts if n == counts[0])
        score = consistent * 1000 + counts[0]
        if score > best_score:
            best, best_score = delimiter, score
    return best


def detect_shape(path: Path, file_name: str) -> FileShape:
    """Decide the format, encoding and separator of a stored upload; ValidationError if unusable."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith(b"PK\x03\x04") or file_name.lower().endswith(".xlsx"):
        if not head.startswith(b"PK\x03\x04"):
            raise ValidationError({"file": [_("This is not an XLSX file.")]})
        return FileShape("xlsx")
    if b"\x00" in head:
        raise ValidationError({"file": [_("Upload an XLSX or CSV file.")]})
    encoding = detect_encoding(head)
    text = head.decode(encoding, errors="ignore")
    return FileShape("csv", encoding=encoding, delimiter=detect_delimiter(text))


def _clean_cell(value: Any) -> Any:
    if isinstance(value, str):
        # NUL cannot be stored in PostgreSQL text; it is never meaningful in an office file.
        return value.replace("\x00", "").strip()
    return value


def iter_rows(path: Path, shape: FileShape) -> Iterator[list[Any]]:
    """Every row of the file, the header first, blank rows skipped."""
    if shape.file_format == "xlsx":
        yield from _iter_xlsx(path)
        return
    with open(path, encoding=shape.encoding, errors="replace", newline="") as handle:
        # NUL is dropped from each line before csv splits it (it is no delimiter or quote, so
        # the cells are the same): one call per line instead of one per cell, and every CSV
        # cell is a str, so the loop below needs no type test. A million receipt lines are
        # eleven million cells; the per-cell function was a tenth of the import's CPU.
        lines = (line.replace("\x00", "") if "\x00" in line else line for line in handle)
        reader = csv.reader(lines, delimiter=shape.delimiter)
        try:
            for row in reader:
                cells = [c.strip() for c in row]
                if any(cells):
                    yield cells
        except csv.Error as exc:
            # A cell past the csv module's limit (a stray quote swallowing the rest of the file,
            # or a pasted blob) is the file's fault: say which line, never a 500.
            raise ValidationError(
                {
                    "file": [
                        _("Line %(line)s of the file cannot be read: a cell is too long.")
                        % {"line": reader.line_num}
                    ]
                }
            ) from exc


def _iter_xlsx(path: Path) -> Iterator[list[Any]]:
    for row in sheet_rows(path):
        cells = [_clean_cell(c) if c is not None else "" for c in row]
        while cells and cells[-1] == "":
            cells.pop()
        if cells:
            yield cells


def count_rows(path: Path, shape: FileShape) -> int:
    """Data rows (header excluded), for the progress bar; a cheap pass for CSV."""
    if shape.file_format == "csv":
        return max(0, sum(1 for _row in iter_rows(path, shape)) - 1)
    return max(0, count_sheet_rows(path) - 1)


def read_head(path: Path, shape: FileShape, rows: int = 5) -> tuple[list[str], list[list[Any]]]:
    """The header and the first `rows` data rows, for the mapping preview."""
    iterator = iter_rows(path, shape)
    header = [str(c) for c in next(iterator, [])]
    sample = []
    for row in iterator:
        sample.append(row)
        if len(sample) >= rows:
            break
    if not header:
        raise ValidationError({"file": [_("The file is empty.")]})
    return header, sample
