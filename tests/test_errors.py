"""The error tree: every error roomsight raises on purpose is a class of roomsight.errors, drawn in the
module's docstring and documented, and no other module defines one of its own."""

import ast
import builtins
import inspect
from pathlib import Path

import pytest

from roomsight import errors

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("roomsight", "analysis", "monitoring", "training", "serving", "rollout", "shell")
TREE = [c for c in vars(errors).values()
        if inspect.isclass(c) and issubclass(c, BaseException) and c.__module__ == errors.__name__]


@pytest.mark.parametrize("cls", TREE, ids=lambda c: c.__name__)
def test_every_error_is_drawn_in_the_tree_and_documented(cls):
    assert f"── {cls.__name__} " in errors.__doc__
    assert cls.__doc__ and cls.__doc__.strip()


def test_the_tree_draws_the_classes_as_they_inherit():
    assert issubclass(errors.GatesFailed, errors.RolloutError) and issubclass(errors.PlanError, errors.UserError)
    users = {c.__name__ for c in TREE if issubclass(c, errors.UserError)}
    drawn_under_user = {line.split("── ")[1].split()[0] for line in errors.__doc__.splitlines() if line.startswith("    │")}
    assert users - {"UserError"} == drawn_under_user


# What an error class derives from: a builtin exception or a class of the tree (not, say, an API's
# pydantic model of its error body).
EXCEPTION_BASES = {name for name, value in vars(builtins).items()
                   if isinstance(value, type) and issubclass(value, BaseException)} | {c.__name__ for c in TREE}


def _base_name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def test_no_module_defines_an_error_of_its_own():
    # Module level only: a private signal inside a function (an API's 401) is that function's business.
    found = [f"{path.relative_to(ROOT)}: {node.name}"
             for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")) if path.name != "errors.py"
             for node in ast.parse(path.read_text()).body
             if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
             and any(_base_name(b) in EXCEPTION_BASES for b in node.bases)]
    assert not found, found
