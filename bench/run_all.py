"""`make bench`: run every benchmark in bench/ one after another and print their reports.

Each benchmark is a standalone script that makes its own scratch database from DATABASE_URL,
prints our figure beside the raw engine's on the same machine and the ratio, and cleans up.
Pass `--quick` for small sizes, or names to run only some: `make bench BENCH_ARGS="pos_ingest"`.
"""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    flags = [a for a in argv if a.startswith("-")]
    names = [a for a in argv if not a.startswith("-")]
    scripts = sorted(p for p in HERE.glob("*.py") if p.name not in {"run_all.py", "common.py"})
    if names:
        scripts = [p for p in scripts if p.stem in names]
    failed = []
    for script in scripts:
        print(f"\n===== {script.stem} =====", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(script), *flags], cwd=HERE.parent)
        print(f"----- {script.stem}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
