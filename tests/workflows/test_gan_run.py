import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mnist_hpo.errors import UserError
from mnist_hpo.tasks.gan import GanTask
from mnist_hpo.train import gan as T
from mnist_hpo.workflows import checkpoints as C
from mnist_hpo.workflows import gan_run as R

from ..conftest import STUDIES

PARAMS = GanTask.with_report_defaults({"batch_size": 128})


def quiet(_msg):
    pass


@pytest.fixture
def task(gan_cfg, mnist):
    return GanTask(gan_cfg.with_overrides(study_name=gan_cfg.name, train_subset=300), mnist)


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_checkpoint_as_if_never_stopped(task, tmp_path, monkeypatch):
    straight = R.run_gan(task, PARAMS, tmp_path / "a", epochs=3, seed=1, every=1, log=quiet)

    real = T.train_gan_epoch
    calls = {"n": 0}

    def crash_in_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "train_gan_epoch", crash_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        R.run_gan(task, PARAMS, tmp_path / "b", epochs=3, seed=1, every=1, log=quiet)
    assert (tmp_path / "b" / "checkpoints" / "LATEST").read_text().strip() == "epoch-0002"
    assert not (tmp_path / "b" / "result.json").exists()

    monkeypatch.setattr(T, "train_gan_epoch", real)
    logs: list[str] = []
    resumed = R.run_gan(task, PARAMS, tmp_path / "b", epochs=3, seed=1, every=1, log=logs.append)
    assert "after epoch 2" in logs[0]
    assert calls["n"] == 3  # the resumed session trained only the third epoch (with the real function)
    assert resumed["history"]["d_loss"] == straight["history"]["d_loss"]
    assert resumed["history"]["g_loss"] == straight["history"]["g_loss"]
    a = _checkpoint_tensors(tmp_path / "a" / "checkpoints" / "epoch-0003")
    b = _checkpoint_tensors(tmp_path / "b" / "checkpoints" / "epoch-0003")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["final"]["test_fid"] == pytest.approx(straight["final"]["test_fid"])
    assert [p.name for p in (tmp_path / "b" / "checkpoints").glob("epoch-*")] == ["epoch-0003"]


@pytest.mark.slow
def test_run_writes_pictures_and_refuses_changed_settings(task, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    result = R.run_gan(task, PARAMS, folder, epochs=2, seed=1, every=1, log=quiet)
    for name in ("losses.png", "progress.gif", "first_vs_final.png", "result.json"):
        assert (folder / name).stat().st_size > 0
    assert sorted(p.name for p in (folder / "grids").iterdir()) == [
        "epoch-0000.png",
        "epoch-0001.png",
        "epoch-0002.png",
    ]
    assert result["gif_frames"] == 3 and result["epochs"] == 2
    saved = json.loads((folder / "result.json").read_text())
    assert saved["final"]["test_fid"] > 0 and 0 <= saved["final"]["test_coverage_tv"] <= 0.9 + 1e-9
    assert saved["judge"]["sha256"] == task.judge["sha256"]  # which classifier scored the run
    assert len(saved["history"]["d_loss"]) == 2 and saved["history"]["eval_epochs"] == [0, 1]

    # Asking again for the same epochs trains nothing; it scores again, keeping a judge's earlier scores.
    monkeypatch.setattr(T, "train_gan_epoch", lambda *a, **k: pytest.fail("trained again"))
    assert R.run_gan(task, PARAMS, folder, epochs=2, seed=1, every=1, log=quiet)["epochs"] == 2
    assert "rescored" not in json.loads((folder / "result.json").read_text())  # same judge: nothing to keep
    (folder / "result.json").write_text(
        json.dumps({**saved, "judge": {"sha256": "ab" * 32}, "final": {**saved["final"], "test_fid": 99.0}})
    )
    again = R.run_gan(task, PARAMS, folder, epochs=2, seed=1, every=1, log=quiet)
    assert again["final"]["test_fid"] == pytest.approx(saved["final"]["test_fid"])
    (entry,) = again["rescored"]
    assert entry["judge_before"]["sha256"] == "ab" * 32 and entry["final_before"]["test_fid"] == 99.0

    with pytest.raises(UserError, match="different params"):
        R.run_gan(task, {**PARAMS, "lr_g": 1e-3}, folder, epochs=3, seed=1, every=1, log=quiet)
    with pytest.raises(UserError, match="different seed"):
        R.run_gan(task, PARAMS, folder, epochs=3, seed=2, every=1, log=quiet)


def test_tampered_checkpoint_is_refused(task, tmp_path):
    folder = tmp_path / "run"
    R.run_gan(task, PARAMS, folder, epochs=1, seed=1, every=1, log=quiet)
    weights = sorted((folder / "checkpoints" / "epoch-0001").glob("state-*.safetensors"))[-1]
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256"):
        R.run_gan(task, PARAMS, folder, epochs=2, seed=1, every=1, log=quiet)
    # --fresh discards it and starts over.
    assert R.run_gan(task, PARAMS, folder, epochs=1, seed=1, every=1, fresh=True, log=quiet)["epochs"] == 1


def _checkpoint_tensors(folder):
    shards = sorted(folder.glob("state-*.safetensors"))
    assert shards
    return {k: v for shard in shards for k, v in load_file(shard).items()}


def test_checkpoint_shards_stay_small_and_load_back(tmp_path):
    """A full-size GAN checkpoint (~13 MB) is split into files under SHARD_BYTES; loading joins them."""
    from mnist_hpo.models.gan import GAN

    model = GAN()
    opt_g, opt_d = torch.optim.Adam(model.generator.parameters()), torch.optim.Adam(model.discriminator.parameters())
    loss = model.discriminator(model.generator(torch.randn(4, model.latent_dim))).sum()
    loss.backward()
    opt_g.step()
    opt_d.step()
    rng = torch.Generator().manual_seed(3)
    folder = C.save_checkpoint(
        tmp_path, epoch=1, model=model, opt_g=opt_g, opt_d=opt_d, rng=rng, history=T.GanHistory(), settings={"x": 1}
    )
    sizes = [f.stat().st_size for f in folder.glob("state-*.safetensors")]
    assert len(sizes) >= 2 and max(sizes) <= C.SHARD_BYTES + (1 << 16)
    fresh = GAN()
    opt_g2, opt_d2 = torch.optim.Adam(fresh.generator.parameters()), torch.optim.Adam(fresh.discriminator.parameters())
    epoch, _ = C.load_checkpoint(
        tmp_path, model=fresh, opt_g=opt_g2, opt_d=opt_d2, rng=torch.Generator(), settings={"x": 1}
    )
    assert epoch == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    assert torch.equal(opt_g.state_dict()["state"][0]["exp_avg"], opt_g2.state_dict()["state"][0]["exp_avg"])


def test_the_animation_keeps_every_grid_in_16_grey_levels(tmp_path):
    from PIL import Image, ImageSequence

    from mnist_hpo.workflows.gan_run import GIF_LEVELS, save_gif, save_grid

    g = torch.Generator().manual_seed(0)
    for epoch in (0, 10, 20):
        save_grid(
            torch.rand(16, 1, 28, 28, generator=g) * 2 - 1,
            tmp_path / "grids" / f"epoch-{epoch:04d}.png",
            f"epoch {epoch}",
        )
    assert save_gif(tmp_path / "grids", tmp_path / "progress.gif") == 3
    gif = Image.open(tmp_path / "progress.gif")
    frames = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]
    assert len(frames) == 3
    levels = set(np.unique(np.stack(frames)).tolist())
    assert len(levels) <= GIF_LEVELS and {0, 255} <= levels
    # Each frame is its grid, quantized: no pixel moves by more than one level's width.
    grid = np.asarray(Image.open(tmp_path / "grids" / "epoch-0010.png"), dtype=np.int16)
    assert np.abs(grid - frames[1].astype(np.int16)).max() < 256 // GIF_LEVELS + 1


@pytest.mark.parametrize("run", ["/abs", "..", "../x", "a/b", "a\nb", "x" * 300], ids=repr)
def test_a_gan_run_name_that_is_not_safe_is_one_line_and_makes_nothing(run, tmp_path, monkeypatch, capsys):
    from mnist_hpo.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    run = run.replace("/abs", str(tmp_path / "abs"))
    assert main(["gan", str(STUDIES / "gan.toml"), "--run", run, "--epochs", "1", "--subset", "100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mnist-hpo: error: --run ") and list(tmp_path.iterdir()) == []
