"""Template hygiene that Django does not check itself."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_template_has_a_multiline_short_comment():
    # `{# … #}` ends at the line's end: split over lines, its text is printed on the page.
    offenders = []
    for path in ROOT.glob("**/templates/**/*.html"):
        if ".venv" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\{#(?!.*#\})", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []
