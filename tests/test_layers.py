"""The import contracts (pyproject.toml ``[tool.importlinter]``, run by ``make test`` as
``lint-imports``) hold, and they fail on a deliberately backwards import: a copy of the tree where
a mapping imports a flow is refused, naming the contract it breaks."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("brygga", "adapters", "mappings", "simulators", "bench")
LINT = Path(sys.executable).with_name("lint-imports")


def _copy(tmp: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def _lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(where / "pyproject.toml"), "--no-cache"], cwd=where,
                          env={**os.environ, "PYTHONPATH": str(where)}, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_its_contracts_and_a_backwards_import_breaks_them(tmp_path):
    tree = _copy(tmp_path)
    ok = _lint(tree)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 broken" in ok.stdout

    base = tree / "mappings" / "base.py"
    base.write_text(base.read_text() + "\nimport brygga.flows.merits.sync  # a format importing a flow\n")
    broken = _lint(tree)
    assert broken.returncode != 0
    assert "Imports run one way" in broken.stdout and "BROKEN" in broken.stdout
    assert "mappings.base -> brygga.flows.merits.sync" in broken.stdout


def test_a_production_module_importing_a_simulator_is_refused(tmp_path):
    tree = _copy(tmp_path)
    cli = tree / "brygga" / "cli.py"
    cli.write_text(cli.read_text() + "\nfrom simulators.all import run_all  # a test double in production\n")
    broken = _lint(tree)
    assert broken.returncode != 0 and "never imports the simulators" in broken.stdout


def test_dags_and_plugins_never_import_the_simulators():
    """(dags/ and plugins/ are not packages import-linter can walk: their imports are read here.)"""
    for path in [*ROOT.joinpath("dags").glob("*.py"), *ROOT.joinpath("plugins").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "simulators" or n.startswith("simulators.") for n in names), path
