"""The storage stage's public names: each re-exported from its private module, and none left at the old paths."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest

import mnist_hpo.storages as storages

from ..conftest import ROOT


def test_every_public_name_is_its_private_modules_own():
    for module, names in storages._EXPORTS.items():
        private = importlib.import_module(f"mnist_hpo.storages.{module}")
        for name in names:
            assert getattr(storages, name) is getattr(private, name), (module, name)
    assert sorted(storages.__all__) == sorted(n for names in storages._EXPORTS.values() for n in names)
    with pytest.raises(AttributeError):
        _ = storages.no_such_name


def test_mypy_sees_every_public_name_at_its_private_module():
    """The TYPE_CHECKING block of the package imports each name of _EXPORTS from its module, as NAME as NAME
    (mypy's re-export), and nothing else: mypy cannot see through the lazy __getattr__."""
    tree = ast.parse((ROOT / "mnist_hpo" / "storages" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1, ast.unparse(node)
        for alias in node.names:
            assert alias.asname == alias.name, ast.unparse(node)
            seen[alias.name] = node.module
    assert seen == {name: module for module, names in storages._EXPORTS.items() for name in names}


def test_the_urls_need_no_optuna():
    """The command line checks a --storage URL before it imports Optuna (tests/test_startup.py times it)."""
    code = (
        "import sys\nfrom mnist_hpo.storages import check_storage_url, storage_dir\ncheck_storage_url('sqlite:///x.db')\n"
        "print([m for m in ('optuna', 'sqlalchemy') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize(
    "old", ["storage", "journal", "outage", "compact", "urls", "timeouts", "rdb", "sources", "spaces", "optuna_compat"]
)
def test_no_module_is_left_at_its_old_path(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"mnist_hpo.hpo.{old}")
