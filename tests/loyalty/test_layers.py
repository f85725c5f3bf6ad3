"""Loyalty sits above sales and below analytics: nothing below it imports it (it joins in
through signals connected in its AppConfig.ready()), and it imports nothing above it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"^\s*(from\s+loyalty[\s.]|import\s+loyalty\b)", re.MULTILINE)


def test_lower_apps_never_import_loyalty():
    offenders = [
        str(path.relative_to(ROOT))
        for app in ("crm", "customers", "sales")
        for path in (ROOT / app).rglob("*.py")
        if IMPORT.search(path.read_text(encoding="utf-8"))
    ]

    assert offenders == []


def test_the_check_sees_an_import():
    assert IMPORT.search("x = 1\nfrom loyalty.models import Account\n")
    assert IMPORT.search("    import loyalty\n")
    assert not IMPORT.search("# the loyalty app\nfrom sales import signals\n")


ABOVE = re.compile(
    r"^\s*(from\s+(analytics|campaigns|demo)[\s.]|import\s+(analytics|campaigns|demo)\b)", re.M
)


def test_loyalty_never_imports_a_higher_app():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "loyalty").rglob("*.py")
        if ABOVE.search(path.read_text(encoding="utf-8"))
    ]

    assert offenders == []
