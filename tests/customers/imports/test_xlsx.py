"""The streamed XLSX reader reads what openpyxl reads, and refuses what it cannot read."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from customers.imports import xlsx
from customers.imports.reader import FileShape, count_rows, iter_rows


def _openpyxl_rows(path: Path) -> list[list]:
    book = load_workbook(path, read_only=True, data_only=True)
    try:
        return _filled([_trimmed(row) for row in book.worksheets[0].iter_rows(values_only=True)])
    finally:
        book.close()


def _filled(rows: list[list]) -> list[list]:
    """The rows with a value: openpyxl also yields the rows missing between two that exist,
    which the import skips as blank anyway."""
    return [row for row in rows if row]


def _trimmed(row) -> list:
    row = list(row)
    while row and row[-1] is None:
        row.pop()
    return row


def _ours(path: Path) -> list[list]:
    return _filled([_trimmed(row) for row in xlsx.sheet_rows(path)])


# Text openpyxl can write (no control characters), with XML's special characters and spaces.
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n<>&\"' "),
    max_size=12,
)
_value = st.one_of(
    st.none(),
    _text,
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.booleans(),
    st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2099, 12, 31)),
    st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2099, 12, 31)),  # noqa: DTZ001
    st.sampled_from(["=1+1", '=A1&"x"', "=SUM(A1:B1)"]),  # no cached value: None in both
)
_formats = st.sampled_from(
    ["General", "dd.mm.yyyy", "yyyy-mm-dd hh:mm", "0.00", "[h]:mm:ss", '"d"0', "@", "mm:ss"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(st.tuples(_value, _formats), max_size=7), min_size=1, max_size=8),
    write_only=st.booleans(),
    mac_epoch=st.booleans(),
)
def test_reads_the_values_openpyxl_reads(tmp_path, rows, write_only, mac_epoch):
    """Shared strings (a normal workbook) and inline strings (write-only), dates by format,
    the 1904 calendar, formulas without a cached value, gaps and empty rows."""
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=write_only)
    if mac_epoch:
        book.epoch = CALENDAR_MAC_1904
    sheet = book.create_sheet() if write_only else book.active
    for row in rows:
        if write_only:
            cells = []
            for value, number_format in row:
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = number_format
                cells.append(cell)
            sheet.append(cells)
        else:
            sheet.append([value for value, _format in row])
            for column, (_unused, number_format) in enumerate(row, start=1):
                sheet.cell(row=sheet.max_row, column=column).number_format = number_format
    path = tmp_path / f"book-{write_only}-{mac_epoch}.xlsx"
    book.save(path)
    assert _ours(path) == _openpyxl_rows(path)


def test_first_worksheet_after_a_chart_sheet_and_cells_out_of_order(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.title = "Данные"
    sheet["C1"] = "третий"
    sheet["A1"] = "первый"
    sheet["B3"] = dt.datetime(2024, 2, 29, 13, 45)  # noqa: DTZ001
    sheet["B3"].number_format = "dd.mm.yyyy hh:mm"
    book.create_chartsheet("Диаграмма", 0)
    book.create_sheet("Второй")["A1"] = "не отсюда"
    path = tmp_path / "order.xlsx"
    book.save(path)
    # (openpyxl itself fails on an empty chart sheet: AttributeError in its reader.)
    assert _ours(path) == [
        ["первый", None, "третий"],
        [None, dt.datetime(2024, 2, 29, 13, 45)],  # noqa: DTZ001
    ]


def _package(
    sheet_xml: str, strings_xml: str | None = None, sheet_type: str = "worksheet"
) -> bytes:
    """A minimal workbook by hand: a namespace prefix, no cell references, phonetic guides."""
    rels = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        f'relationships/{sheet_type}" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/sharedStrings" Target="/xl/sharedStrings.xml"/></Relationships>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            '<x:workbook xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<x:sheets><x:sheet name="Лист1" sheetId="1" r:id="rId1"/></x:sheets></x:workbook>',
        )
        archive.writestr("xl/_rels/workbook.xml.rels", rels)
        archive.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        if strings_xml is not None:
            archive.writestr("xl/sharedStrings.xml", strings_xml)
    return out.getvalue()


MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def test_prefixed_names_cells_without_references_and_phonetic_guides(tmp_path):
    strings = (
        f'<x:sst xmlns:x="{MAIN}"><x:si><x:t>Иванов</x:t></x:si>'
        "<x:si><x:r><x:t>Пет</x:t></x:r><x:r><x:t>ров</x:t></x:r>"
        "<x:rPh><x:t>ペトロフ</x:t></x:rPh></x:si></x:sst>"
    )
    sheet = (
        f'<x:worksheet xmlns:x="{MAIN}"><x:sheetData>'
        '<x:row><x:c t="s"><x:v>0</x:v></x:c><x:c t="s"><x:v>1</x:v></x:c>'
        '<x:c t="inlineStr"><x:is><x:t>A &amp; B</x:t></x:is></x:c></x:row>'
        '<x:row><x:c t="b"><x:v>1</x:v></x:c><x:c t="e"><x:v>#N/A</x:v></x:c>'
        '<x:c t="str"><x:f>A1</x:f><x:v>кэш</x:v></x:c><x:c><x:v>1.5E3</x:v></x:c>'
        '<x:c t="s"><x:v></x:v></x:c><x:c><x:v>79161234567</x:v></x:c></x:row>'
        "</x:sheetData></x:worksheet>"
    )
    path = tmp_path / "hand.xlsx"
    path.write_bytes(_package(sheet, strings))
    assert _ours(path) == [
        ["Иванов", "Петров", "A & B"],
        [True, "#N/A", "кэш", 1500.0, None, 79161234567],
    ]
    # What the import sees: text stripped, empty cells as "", the header row first.
    assert list(iter_rows(path, FileShape("xlsx")))[1] == [
        True,
        "#N/A",
        "кэш",
        1500.0,
        "",
        79161234567,
    ]


@pytest.mark.parametrize(
    "case",
    ["doctype", "truncated", "not_zip", "no_sheet", "bad_string_index", "bomb", "bad_xml"],
)
def test_unreadable_files_are_a_validation_error(tmp_path, case):
    good_sheet = f'<worksheet xmlns="{MAIN}"><sheetData><row><c t="s"><v>0</v></c></row>'
    good_sheet += "</sheetData></worksheet>"
    strings = f'<sst xmlns="{MAIN}"><si><t>x</t></si></sst>'
    if case == "doctype":
        data = _package(
            '<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            f'<worksheet xmlns="{MAIN}"><sheetData><row><c t="inlineStr"><is><t>&b;</t></is>'
            "</c></row></sheetData></worksheet>",
            strings,
        )
    elif case == "truncated":
        data = _package(good_sheet, strings)[:-200]
    elif case == "not_zip":
        data = b"PK\x03\x04 this is not an archive"
    elif case == "no_sheet":
        data = _package(good_sheet, strings, sheet_type="chartsheet")
    elif case == "bad_string_index":
        data = _package(good_sheet.replace("<v>0</v>", "<v>7</v>"), strings)
    elif case == "bomb":
        # A part that declares more than the cap is refused before a byte is inflated.
        data = _package(good_sheet, f'<sst xmlns="{MAIN}"><si><t>' + "x" * 4096 + "</t></si></sst>")
        data = _declared_size(data, "xl/sharedStrings.xml", xlsx.MAX_STRINGS_BYTES + 1)
    else:
        data = _package(good_sheet.replace("</row>", "</rw>"), strings)
    path = tmp_path / f"{case}.xlsx"
    path.write_bytes(data)
    with pytest.raises(ValidationError) as caught:
        list(iter_rows(path, FileShape("xlsx")))
    assert caught.value.message_dict == {"file": ["The XLSX file cannot be read."]}


def _declared_size(data: bytes, name: str, size: int) -> bytes:
    """The archive with one member's declared (uncompressed) size changed in the central
    directory, as a crafted zip bomb would say it."""
    out = bytearray(data)
    offset = data.find(b"PK\x01\x02")
    while offset != -1:
        name_length = int.from_bytes(data[offset + 28 : offset + 30], "little")
        if data[offset + 46 : offset + 46 + name_length] == name.encode():
            out[offset + 24 : offset + 28] = size.to_bytes(4, "little")
            return bytes(out)
        offset = data.find(b"PK\x01\x02", offset + 4)
    raise AssertionError(f"{name} is not in the archive")


def test_row_count_from_the_dimension_or_the_row_tags(tmp_path):
    book = Workbook()
    sheet = book.active
    for n in range(2500):
        sheet.append([f"Фамилия{n}", n])
    with_dimension = tmp_path / "dimension.xlsx"
    book.save(with_dimension)
    assert count_rows(with_dimension, FileShape("xlsx")) == 2499

    # Write-only files have no dimension: the row tags are counted across the 64 kB pieces.
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for n in range(12_001):
        sheet.append([f"Фамилия{n}", n, "x" * (n % 50)])
    without = tmp_path / "rows.xlsx"
    book.save(without)
    assert b"<dimension" not in zipfile.ZipFile(without).read("xl/worksheets/sheet1.xml")
    assert count_rows(without, FileShape("xlsx")) == 12_000
    assert len(list(iter_rows(without, FileShape("xlsx")))) == 12_001
