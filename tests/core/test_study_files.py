"""The report's study files ship with the package: a bare name finds them from any folder; a path
is a file of your own."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from mnist_hpo.config import load_study_config
from mnist_hpo.core.study_files import STUDIES_DIR, shipped_studies, study_path
from mnist_hpo.errors import UserError
from mnist_hpo.workflows.record import study_parts

from ..conftest import ROOT, assert_one_error_line


def used_study_names() -> set[str]:
    """Every study the record and the Makefile name: they must ship, or a fresh install cannot run them."""
    make = set(
        re.findall(r"mnist_hpo (?:study|gan|worker) (?:\$\(or \$\(STUDY\),)?([\w-]+)", (ROOT / "Makefile").read_text())
    )
    return {p.file for p in study_parts()} | {"gan"} | make


def test_the_names_the_record_and_the_makefile_use_ship():
    used = used_study_names()
    assert {"ae", "dae", "clf", "gan", "gan-search", "ae-tpe"} <= used  # the Makefile was read
    assert used <= set(shipped_studies())


def test_a_bare_name_is_the_shipped_file_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in used_study_names():
        assert study_path(name) == STUDIES_DIR / f"{name}.toml"
        assert load_study_config(name).source == f"mnist_hpo/studies/{name}.toml"  # the same label on any machine
    assert load_study_config("ae").name == "ae"


def test_the_command_line_finds_a_shipped_study_from_any_folder(tmp_path, monkeypatch, capsys):
    """Past the study file's checks (which used to say 'study file studies/ae.toml not found' outside
    the checkout) to the next one, which needs no training to answer."""
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(capsys, ["study", "ae", "--epochs", "1"], "give it a name with --study-name")
    assert list(tmp_path.iterdir()) == []


def test_a_path_is_a_file_of_your_own_and_a_name_is_never_shadowed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    mine = (STUDIES_DIR / "ae.toml").read_text().replace('name = "ae"', 'name = "mine"')
    (tmp_path / "studies" / "ae.toml").write_text(mine)
    (tmp_path / "ae.toml").write_text(mine)
    assert load_study_config("studies/ae.toml").name == "mine"  # a path wins: read as given
    assert load_study_config("ae.toml").name == "mine"
    assert load_study_config(tmp_path / "ae.toml").source == str(tmp_path / "ae.toml")
    assert load_study_config("ae").name == "ae"  # a bare name is the shipped study, whatever lies here


def test_a_name_that_ships_nothing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = r"no study 'ea' ships with mnist-hpo; did you mean 'ae'\? \(shipped: ae, ae-gp, .*; a file of your own "
    with pytest.raises(UserError, match=expected + r"is given by its path, e.g. ./ea.toml\)$"):
        study_path("ea")
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "mine.toml").write_text("")
    with pytest.raises(UserError, match=r"to run the file studies/mine.toml here, give its path"):
        study_path("mine")


def test_a_missing_path_says_how_to_name_a_shipped_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        UserError,
        match=r"study file studies/ae.toml not found; the study 'ae' ships with mnist-hpo: "
        r"name it without a path \(ae\)",
    ):
        load_study_config("studies/ae.toml")
    with pytest.raises(UserError, match=r"study file nope.toml not found; check the path .*: ae, ae-gp"):
        load_study_config("nope.toml")


def test_the_built_package_holds_the_study_files(tmp_path):
    """A wheel built from the source (as `pip install .` builds it) contains every study file and the judge.

    An editable install reads the source tree, so only a real build shows package data left out of pyproject.toml.
    """
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "mnist_hpo", src / "mnist_hpo", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))",
            str(tmp_path / "dist"),
        ],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = tmp_path / "dist" / build.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"mnist_hpo/studies/{p.name}" for p in STUDIES_DIR.glob("*.toml")}
    assert len(expected) >= len(used_study_names()) and expected <= names, sorted(expected - names)
    assert "mnist_hpo/measures/judges/mnist-fidnet.safetensors" in names
