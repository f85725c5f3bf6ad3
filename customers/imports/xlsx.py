"""Reading the first worksheet of an XLSX file as rows of values, streamed with expat.

openpyxl's read-only mode streams too, but builds an element tree per cell and reads it back in
Python: about 19 µs a cell, which made a 20,000-row customer file slower to read than to store
(4,700 rows/s against 7,000 from CSV, bench/README.md). Here expat (C) calls one small handler
per tag, about a fifth of that. The values are openpyxl's (`values_only=True`, `data_only=True`,
the cached result of a formula), and openpyxl's own helpers decide what a number format means,
so a file reads the same through both: `tests/customers/imports/test_xlsx.py` compares them on
generated workbooks.

Memory stays flat: the sheet is decompressed and parsed in 64 kB pieces and rows are handed on
as they close. The shared strings are held, as openpyxl holds them; every part's declared size
is capped (the archive cannot say one size and inflate to another: zipfile stops at the
declared size), so a small file that would inflate to gigabytes is refused, not read.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.parsers import expat

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH, from_excel, from_ISO8601

CHUNK = 64 * 1024
# Decompressed sizes we agree to read: a sheet of a million 20-column rows is about 1 GB of XML;
# the shared strings and the small parts are far below their caps in any real file.
MAX_SHEET_BYTES = 4 * 1024**3
MAX_STRINGS_BYTES = 512 * 1024**2
MAX_PART_BYTES = 16 * 1024**2

_MAIN = (
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "http://purl.oclc.org/ooxml/spreadsheetml/main",  # "strict" files
)
_REL_NS = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://purl.oclc.org/ooxml/officeDocument/relationships",
)
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"


def _local(names: tuple[str, ...]) -> dict[str, str]:
    """Expat's `uri local` names of the spreadsheet namespaces, mapped to the local part."""
    return {f"{ns} {name}": name for ns in _MAIN for name in names}


class XlsxError(Exception):
    """The archive is not a workbook we can read; the caller says so in the user's language."""


def unreadable() -> ValidationError:
    return ValidationError({"file": [_("The XLSX file cannot be read.")]})


def _parser(
    start: Callable[[str, dict[str, str]], None] | None,
    end: Callable[[str], None] | None,
    text: Callable[[str], None] | None,
) -> Any:
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.buffer_size = CHUNK
    # A workbook's parts never declare a DTD; one that does may be an entity-expansion attack.
    parser.StartDoctypeDeclHandler = _refuse_doctype
    if start:
        parser.StartElementHandler = start
    if end:
        parser.EndElementHandler = end
    if text:
        parser.CharacterDataHandler = text
    return parser


def _refuse_doctype(*_args: Any) -> None:
    raise XlsxError("a document type declaration")


def _feed(archive: zipfile.ZipFile, name: str, cap: int, parser: Any) -> Iterator[None]:
    """Parse one part in pieces; yields after each piece, so a caller can hand on what closed."""
    info = archive.getinfo(name)
    if info.file_size > cap:
        raise XlsxError(f"{name} declares {info.file_size} bytes")
    with archive.open(info) as handle:
        while chunk := handle.read(CHUNK):
            parser.Parse(chunk, False)
            yield
    parser.Parse(b"", True)
    yield


def _parse_whole(archive: zipfile.ZipFile, name: str, parser: Any) -> None:
    for _step in _feed(archive, name, MAX_PART_BYTES, parser):
        pass


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """`{id: (type, target path in the archive)}` of a part's relationships, if it has any."""
    folder, name = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", f"{name}.rels")
    found: dict[str, tuple[str, str]] = {}
    if rels_name not in archive.NameToInfo:
        return found

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == f"{_PACKAGE_RELS} Relationship" and attrs.get("TargetMode") != "External":
            target = attrs.get("Target", "")
            path = target[1:] if target.startswith("/") else posixpath.join(folder, target)
            found[attrs.get("Id", "")] = (attrs.get("Type", ""), posixpath.normpath(path))

    _parse_whole(archive, rels_name, _parser(start, None, None))
    return found


def _workbook_part(archive: zipfile.ZipFile) -> str:
    for kind, target in _relationships(archive, "").values():
        if kind.endswith("/officeDocument"):
            return target
    return "xl/workbook.xml"


class _Workbook:
    """What reading the first worksheet needs from the workbook's other parts."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        part = _workbook_part(archive)
        rels = _relationships(archive, part)
        self.sheet = ""
        self.epoch = WINDOWS_EPOCH
        sheet_ids: list[str] = []
        wb_tags = _local(("sheet", "workbookPr"))

        def start(tag: str, attrs: dict[str, str]) -> None:
            local = wb_tags.get(tag)
            if local == "sheet":
                sheet_ids.extend(attrs[f"{ns} id"] for ns in _REL_NS if f"{ns} id" in attrs)
            elif local == "workbookPr" and attrs.get("date1904") in ("1", "true"):
                self.epoch = CALENDAR_MAC_1904

        _parse_whole(archive, part, _parser(start, None, None))
        # The first worksheet in the workbook's order (a chart sheet is not one), as openpyxl.
        for rel_id in sheet_ids:
            kind, target = rels.get(rel_id, ("", ""))
            if kind.endswith("/worksheet"):
                self.sheet = target
                break
        if not self.sheet:
            raise XlsxError("no worksheet")
        self.strings: list[str] = []
        self.date_styles: set[int] = set()
        self.timedelta_styles: set[int] = set()
        for kind, target in rels.values():
            if kind.endswith("/sharedStrings") and target in archive.NameToInfo:
                self.strings = _shared_strings(archive, target)
            elif kind.endswith("/styles") and target in archive.NameToInfo:
                self.date_styles, self.timedelta_styles = _date_styles(archive, target)


def _shared_strings(archive: zipfile.ZipFile, name: str) -> list[str]:
    """Each `<si>`'s text: its runs joined, the phonetic guides (`rPh`) left out, as openpyxl."""
    strings: list[str] = []
    pieces: list[str] = []
    state = {"text": False, "phonetic": 0}
    tags = _local(("si", "t", "rPh"))

    def start(tag: str, _attrs: dict[str, str]) -> None:
        local = tags.get(tag)
        if local == "t":
            state["text"] = not state["phonetic"]
        elif local == "rPh":
            state["phonetic"] += 1
        elif local == "si":
            pieces.clear()

    def end(tag: str) -> None:
        local = tags.get(tag)
        if local == "t":
            state["text"] = False
        elif local == "rPh":
            state["phonetic"] -= 1
        elif local == "si":
            strings.append("".join(pieces))

    def text(data: str) -> None:
        if state["text"]:
            pieces.append(data)

    for _step in _feed(archive, name, MAX_STRINGS_BYTES, _parser(start, end, text)):
        pass
    return strings


def _date_styles(archive: zipfile.ZipFile, name: str) -> tuple[set[int], set[int]]:
    """The cell styles (`s` of a cell: the index in `cellXfs`) whose number format is a date or a
    duration, judged by openpyxl's rules (the first section of the format has d, m, y, h or s)."""
    custom: dict[int, str] = {}
    formats: list[int] = []
    depth = {"cellXfs": 0}
    tags = _local(("numFmt", "cellXfs", "xf"))

    def start(tag: str, attrs: dict[str, str]) -> None:
        local = tags.get(tag)
        if local == "numFmt":
            custom[int(attrs.get("numFmtId", "-1"))] = attrs.get("formatCode", "")
        elif local == "cellXfs":
            depth["cellXfs"] += 1
        elif local == "xf" and depth["cellXfs"]:
            formats.append(int(attrs.get("numFmtId", "0")))

    def end(tag: str) -> None:
        if tags.get(tag) == "cellXfs":
            depth["cellXfs"] -= 1

    _parse_whole(archive, name, _parser(start, end, None))
    dates, durations = set(), set()
    for style, format_id in enumerate(formats):
        code = custom.get(format_id, BUILTIN_FORMATS.get(format_id))
        if is_date_format(code):
            dates.add(style)
        if is_timedelta_format(code):
            durations.add(style)
    return dates, durations


_COLUMN = re.compile(r"[A-Z]+")


def _column(reference: str) -> int:
    """`"C12"` → 2 (zero-based)."""
    letters = _COLUMN.match(reference)
    if letters is None:
        raise XlsxError(f"cell reference {reference!r}")
    number = 0
    for letter in letters.group():
        number = number * 26 + ord(letter) - 64
    return number - 1


def _number(text: str) -> int | float:
    if "." in text or "E" in text or "e" in text:
        return float(text)
    return int(text)


class _SheetReader:
    """The handlers for one worksheet's rows; `rows` collects the rows closed so far."""

    def __init__(self, book: _Workbook) -> None:
        self.book = book
        self.rows: list[list[Any]] = []
        self.row: list[Any] = []
        self.column = -1
        self.kind = "n"
        self.style = 0
        self.pieces: list[str] = []
        self.has_value = False
        self.text = False  # inside a <v>, or a <t> of an inline string outside its phonetic guide
        self.phonetic = 0
        self.tags = _local(("row", "c", "v", "t", "is", "rPh"))

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        local = self.tags.get(tag)
        if local == "c":
            reference = attrs.get("r")
            self.column = _column(reference) if reference else self.column + 1
            self.kind = attrs.get("t", "n")
            style = attrs.get("s")
            self.style = int(style) if style else 0
            self.pieces = []
            self.has_value = False
        elif local == "v":
            self.text = True
            self.has_value = True
        elif local == "t":
            self.text = not self.phonetic
            self.has_value = True
        elif local == "rPh":
            self.phonetic += 1
        elif local == "row":
            self.row = []
            self.column = -1

    def end(self, tag: str) -> None:
        local = self.tags.get(tag)
        if local == "c":
            value = self._value() if self.has_value else None
            if value is not None:
                row = self.row
                if self.column >= len(row):
                    row.extend([None] * (self.column - len(row) + 1))
                row[self.column] = value
        elif local in ("v", "t"):
            self.text = False
        elif local == "rPh":
            self.phonetic -= 1
        elif local == "row":
            self.rows.append(self.row)

    def characters(self, data: str) -> None:
        if self.text:
            self.pieces.append(data)

    def _value(self) -> Any:
        raw = "".join(self.pieces)
        if not raw:
            return None  # openpyxl's reading of an empty <v> or <t>, whatever the type
        kind = self.kind
        if kind == "s":
            return self.book.strings[int(raw)]
        if kind == "inlineStr" or kind == "str":
            return raw
        if kind == "n":
            number = _number(raw)
            if self.style in self.book.date_styles:
                try:
                    return from_excel(
                        number,
                        self.book.epoch,
                        timedelta=self.style in self.book.timedelta_styles,
                    )
                except (OverflowError, ValueError):
                    return "#VALUE!"  # openpyxl's reading of a date out of range
            return number
        if kind == "b":
            return bool(int(raw))
        if kind == "d":
            return from_ISO8601(raw)
        return raw  # "e": the error's text, such as #N/A


def sheet_rows(path: Path) -> Iterator[list[Any]]:
    """Every row of the first worksheet as a list of values (None for an empty cell), in the
    file's order; a row the file leaves out is not made up (openpyxl yields it empty; the
    import skips blank rows either way). ValidationError when the file cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive:
            reader = _SheetReader(_Workbook(archive))
            parser = _parser(reader.start, reader.end, reader.characters)
            for _step in _feed(archive, reader.book.sheet, MAX_SHEET_BYTES, parser):
                if reader.rows:
                    yield from reader.rows
                    reader.rows.clear()
    except (
        XlsxError,
        zipfile.BadZipFile,
        zlib.error,
        expat.ExpatError,
        KeyError,
        IndexError,
        ValueError,
        EOFError,
        NotImplementedError,  # a compression method zipfile lacks
        RuntimeError,  # an encrypted member
    ) as exc:
        raise unreadable() from exc


_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")
_DIMENSION = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?dimension\s+ref=\"[A-Z]*\d*:?[A-Z]*(\d+)\"")


def count_sheet_rows(path: Path) -> int:
    """The rows of the first worksheet, header included: the `<dimension>` the producer wrote,
    else the `<row>` tags counted in the raw XML (a regular expression over each piece, not a
    parse: a tag's `<` is never escaped text). For the progress bar only."""
    try:
        with zipfile.ZipFile(path) as archive:
            book = _Workbook(archive)
            info = archive.getinfo(book.sheet)
            count = 0
            tail = b""
            with archive.open(info) as handle:
                first = True
                while chunk := handle.read(CHUNK):
                    piece = tail + chunk
                    if first:
                        first = False
                        head = piece.split(b"<sheetData", 1)[0]
                        dimension = _DIMENSION.search(head)
                        if dimension is not None and int(dimension.group(1)) > 1:
                            return int(dimension.group(1))
                    # A tag starting in the piece's last bytes may be cut: it is counted with
                    # the next piece, which starts with those bytes.
                    cut = max(0, len(piece) - 64)
                    count += sum(1 for tag in _ROW_TAG.finditer(piece) if tag.start() < cut)
                    tail = piece[cut:]
            return count + len(_ROW_TAG.findall(tail))
    except (XlsxError, zipfile.BadZipFile, zlib.error, expat.ExpatError, KeyError, ValueError):
        raise unreadable() from None
