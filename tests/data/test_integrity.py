"""Whole files: the sha256 check and the atomic write every layer uses."""

from __future__ import annotations

import os

import pytest

from mnist_hpo.data.integrity import check_sha256, sha256_file, write_atomically, write_text_atomically
from mnist_hpo.errors import UserError


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "export.json"
    path.write_text("old\n")

    def half_then_crash(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt  # a Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, half_then_crash)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json"]


def test_a_write_replaces_the_file_whole_with_the_mode_a_plain_write_gives(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    path = tmp_path / "LATEST"
    path.write_text("epoch-0001\n")
    write_text_atomically(path, "epoch-0002\n")
    assert path.read_text() == "epoch-0002\n"
    assert os.stat(path).st_mode == os.stat(plain).st_mode  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "plain.txt"]


def test_check_sha256_says_which_record_and_what_to_do(tmp_path):
    path = tmp_path / "weights.safetensors"
    write_atomically(path, lambda f: f.write(b"weights"))
    assert check_sha256(path, sha256_file(path), where="w", hint="h") == sha256_file(path)
    with pytest.raises(UserError, match=r"does not match the sha256 recorded at export time; re-export it"):
        check_sha256(path, "0" * 64, where="the sha256 recorded at export time", hint="re-export it")
    with pytest.raises(UserError, match=r"is missing; export it first"):
        check_sha256(tmp_path / "nope", "0" * 64, where="w", hint="h", missing_hint="export it first")
