"""The layers of the README are enforced: `make lint` runs import-linter with the project's
contracts, a contract of each kind fails on an upward import, and the layers are in order."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# The same contract types as pyproject.toml, over a two-app tree: `core` below `app`.
CONFIG = """
[tool.importlinter]
root_packages = ["app", "core"]

[[tool.importlinter.contracts]]
name = "layers"
type = "layers"
layers = ["app", "core"]

[[tool.importlinter.contracts]]
name = "core imports no app"
type = "forbidden"
source_modules = ["core"]
forbidden_modules = ["app"]
"""


def project_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def lint(tree: Path) -> subprocess.CompletedProcess:
    (tree / "contracts.toml").write_text(CONFIG)
    return subprocess.run(  # noqa: S603 - our own venv's executable, our own arguments
        [str(LINT_IMPORTS), "contracts.toml", "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def make_tree(tree: Path, core_module: str) -> None:
    for package in ("app", "core"):
        (tree / package).mkdir()
        (tree / package / "__init__.py").write_text("")
    (tree / "app" / "views.py").write_text("from core import models\n")
    (tree / "core" / "models.py").write_text(core_module)


def test_contracts_hold_for_imports_that_go_down(tmp_path):
    make_tree(tmp_path, "X = 1\n")
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "upward",
    [
        "from app import views\n",
        # Lazy imports count too: the graph is built from every import statement.
        "def later():\n    from app.views import models\n    return models\n",
    ],
)
def test_an_import_from_core_up_to_an_app_breaks_both_contracts(tmp_path, upward):
    make_tree(tmp_path, upward)
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 2 broken" in result.stdout
    assert "core.models -> app.views" in result.stdout


def test_make_lint_runs_the_import_contracts():
    lint_target = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert lint_target and "$(BIN)/lint-imports" in lint_target.group(1)


def test_the_layers_contract_lists_the_apps_in_the_readme_order():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    diagram = section.split("```", 2)[1]
    config = project_config()
    apps = set(config["root_packages"])
    drawn = [line.split()[0] for line in diagram.splitlines() if line[:1].isalpha()]
    contracts = {contract["type"]: contract for contract in config["contracts"]}

    assert [name for name in drawn if name in apps] == drawn
    assert contracts["layers"]["layers"] == drawn
    assert set(drawn) == apps
    assert contracts["forbidden"]["source_modules"] == ["crm"]
    assert set(contracts["forbidden"]["forbidden_modules"]) == apps - {"crm"}
