"""Whole numpy columns in and out of PostgreSQL with binary COPY.

Fetching 200,000 rows as Python tuples, or formatting them as text, costs a Python loop per
row; the binary COPY format of fixed-width, non-null columns is one numpy record array. The
format: an 11-byte signature, 32-bit flags and header-extension length, then per row a 16-bit
field count and each field as a 32-bit length and its big-endian value, then -1.
"""

from __future__ import annotations

import numpy as np
from django.db import connection

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
# A numeric in the binary format: digit count, weight of the first digit, sign, display scale,
# then base-10000 digits. "kopecks" sends whole kopecks (int64) as a numeric with two decimals
# in a fixed six digits (five for the roubles, enough for any int64, and one for the kopecks
# times 100): PostgreSQL strips the zero digits on receipt, so the stored value is the one
# `kopecks * 0.01` gives in SQL, and a numeric(p, 2) column checks its precision as it would.
NUMERIC_KOPECKS = np.dtype(
    [
        ("ndigits", ">i2"),
        ("weight", ">i2"),
        ("sign", ">u2"),
        ("dscale", ">u2"),
        ("digits", ">i2", 6),
    ]
)
NUMERIC_NEG = 0x4000
# Column kinds: PostgreSQL bigint and double precision, both 8 bytes; numeric from kopecks.
KINDS = {"int8": ">i8", "float8": ">f8", "kopecks": NUMERIC_KOPECKS}


def _row_dtype(columns: list[tuple[str, str]]) -> np.dtype:
    fields = [("__count", ">i2")]
    for name, kind in columns:
        fields += [(f"__len_{name}", ">i4"), (name, KINDS[kind])]
    return np.dtype(fields)


def numeric_from_kopecks(kopecks: np.ndarray) -> np.ndarray:
    """int64 kopecks as binary numerics with two decimals (`NUMERIC_KOPECKS`)."""
    kopecks = np.asarray(kopecks, dtype=np.int64)
    if len(kopecks) and kopecks.min() == np.iinfo(np.int64).min:
        raise ValueError("kopecks out of range")
    out = np.zeros(len(kopecks), dtype=NUMERIC_KOPECKS)
    out["ndigits"], out["weight"], out["dscale"] = 6, 4, 2
    out["sign"] = np.where(kopecks < 0, NUMERIC_NEG, 0)
    size = np.abs(kopecks)
    digits = np.empty((len(kopecks), 6), dtype=np.int64)
    digits[:, 5] = size % 100 * 100
    roubles = size // 100
    for place in range(4, -1, -1):
        digits[:, place] = roubles % 10_000
        roubles //= 10_000
    out["digits"] = digits
    return out


def copy_in(table: str, columns: list[tuple[str, str]], arrays: list[np.ndarray]) -> None:
    """COPY equal-length arrays into `table` (columns given as (name, kind), in table order)."""
    rows = np.empty(len(arrays[0]), dtype=_row_dtype(columns))
    rows["__count"] = len(columns)
    for (name, kind), values in zip(columns, arrays, strict=True):
        rows[f"__len_{name}"] = np.dtype(KINDS[kind]).itemsize
        rows[name] = numeric_from_kopecks(values) if kind == "kopecks" else values
    names = ", ".join(name for name, _kind in columns)
    # As a cursor's statement would: a bad value raises django.db's error (DataError, say).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT BINARY)") as copy:  # noqa: S608 - own table and column names
            copy.write(HEADER + rows.tobytes() + TRAILER)


def copy_out(
    select: str, params: dict | None, columns: list[tuple[str, str]], using=None
) -> dict[str, np.ndarray]:
    """Run `select` (whose columns must be non-null bigint/float8, in `columns` order) and
    return its columns as native-endian arrays; on the Django connection `using` if given."""
    if any(np.dtype(KINDS[kind]).itemsize != 8 for _name, kind in columns):
        raise ValueError("copy_out reads 8-byte columns only")
    buffer = bytearray()
    with (using or connection).cursor() as cursor:
        # psycopg binds the parameters client-side for COPY.
        with cursor.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT BINARY)", params) as copy:
            for block in copy:
                buffer += block
    if not buffer.startswith(SIGNATURE) or buffer[15:19] != b"\x00\x00\x00\x00":
        raise ValueError("unexpected COPY BINARY header")
    if buffer[-2:] != TRAILER:
        raise ValueError("unexpected COPY BINARY trailer")
    rows = np.frombuffer(bytes(buffer[19:-2]), dtype=_row_dtype(columns))
    if len(rows) and (
        (rows["__count"] != len(columns)).any()
        or any((rows[f"__len_{name}"] != 8).any() for name, _kind in columns)
    ):
        raise ValueError("COPY BINARY rows with NULLs or other widths than 8 bytes")
    return {name: rows[name].astype(KINDS[kind].replace(">", "=")) for name, kind in columns}
