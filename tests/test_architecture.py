"""The layout the README draws, checked on the source: which package may import which (data flows one
way, the shell on top), and modules small enough to read in one sitting."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each package and the packages it may import. serving and rollout reach monitoring for the shared
# descriptors and evidence providers; nothing below the shell imports training or the shell.
ALLOWED = {
    "roomsight": set(),
    "analysis": {"roomsight"},
    "monitoring": {"roomsight", "analysis"},
    "training": {"roomsight", "monitoring"},
    "serving": {"roomsight", "monitoring"},
    "rollout": {"roomsight", "monitoring", "analysis"},
    "shell": {"roomsight", "analysis", "monitoring", "training", "serving", "rollout"},
}
MAX_LINES = 300
# Drawing code: each painter is a short function, and they are many.
LONG_BY_NATURE = {"training/synthetic.py"}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_lies_below_it(package):
    wrong = {f"{p.relative_to(ROOT)} imports {other}"
             for p in _modules(package) for other in _imported_packages(p) - ALLOWED[package] - {package}}
    assert not wrong, sorted(wrong)


def test_every_package_is_in_the_map():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert packages == set(ALLOWED)


def test_no_module_is_longer_than_a_sitting():
    long = {str(p.relative_to(ROOT)): n for package in ALLOWED for p in _modules(package)
            if (n := len(p.read_text().splitlines())) > MAX_LINES and str(p.relative_to(ROOT)) not in LONG_BY_NATURE}
    assert not long, long
