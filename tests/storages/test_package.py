"""The storage stage's public names: each re-exported from its private module, and none left at the old paths."""

from __future__ import annotations

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


def test_the_urls_need_no_optuna():
    """The command line checks a --storage URL before it imports Optuna (tests/test_startup.py times it)."""
    code = ("import sys\nfrom mnist_hpo.storages import check_storage_url, storage_dir\ncheck_storage_url('sqlite:///x.db')\n"
            "print([m for m in ('optuna', 'sqlalchemy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("old", ["storage", "journal", "outage", "compact", "urls", "timeouts", "rdb", "sources",
                                 "spaces", "optuna_compat"])
def test_no_module_is_left_at_its_old_path(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"mnist_hpo.hpo.{old}")
