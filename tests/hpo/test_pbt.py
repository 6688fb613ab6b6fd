"""Population-based training end to end, in this process (mnist_hpo/hpo/pbt): a tiny population trained,
its exploits and explores checked against its checkpoints, a segment rerun, the best member exported.

The study (tests/hpo/conftest.py: ``tiny_population``, of tests/conftest.py's ``TINY_PBT``) is
4 autoencoders x 3 segments of 1 epoch on 200 images; workers in separate processes, and a kill, are
tests/hpo/test_pbt_workers.py's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import optuna
import pytest
import torch
from optuna.trial import TrialState

from mnist_hpo.artifacts.export import export_best
from mnist_hpo.artifacts.rerun import rerun_trial
from mnist_hpo.artifacts.verify import verify_export
from mnist_hpo.cli import main
from mnist_hpo.errors import UserError
from mnist_hpo.hpo.pbt import END, PBT, Population, load_checkpoint, ranking, segment_seed
from mnist_hpo.hpo.run import run_study
from mnist_hpo.storages import checkpoints_dir, open_storage

from .conftest import one_thread

pytestmark = pytest.mark.slow  # trains (about ten seconds)
MUTABLE = ("lr", "weight_decay")


@pytest.fixture
def population(tiny_population, monkeypatch):
    root, url, cfg, data = tiny_population
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(root))
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(url))
    return study, Population(cfg, study.get_trials()), url, cfg, data


def _parent(pop: Population, trial):
    return next(t for t in pop.trials if t.number == trial.user_attrs[PBT]["parent"])


def test_every_member_trains_every_epoch_one_segment_per_trial(population):
    study, pop, _, cfg, _ = population
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 12 and pop.finished
    assert sorted(pop.key(t) for t in study.trials) == [(m, g) for m in range(4) for g in range(3)]
    assert [pop.canonical(m, 0).number for m in range(4)] == [0, 1, 2, 3]  # queued first: the sampler's first draws
    exploits = 0
    for t in study.trials:
        member, generation = pop.key(t)
        info = t.user_attrs[PBT]
        assert info["epochs"] == [generation, generation + 1] and list(t.intermediate_values) == [generation]
        assert t.user_attrs["seed"] == segment_seed(cfg.seed, member, generation)
        assert info["final"] == (generation == 2)
        if generation:
            parent = _parent(pop, t)
            assert pop.key(parent)[1] == generation - 1 and info["start"] == parent.user_attrs[END]
            exploits += info["exploited"]
            assert info["exploited"] == (info["parent_member"] != member)
    assert exploits == 2  # one member of four (the bottom quarter) in each of generations 1 and 2


def test_an_exploit_copies_exactly_its_parents_checkpoint(population):
    study, pop, _, _, _ = population
    exploited = [t for t in study.trials if t.user_attrs[PBT].get("exploited")]
    for t in exploited:
        parent, generation = _parent(pop, t), t.user_attrs[PBT]["generation"]
        # the parent is the best quarter of its generation, the member the worst quarter
        order = ranking(pop, generation - 1, maximize=False)
        assert pop.key(parent)[0] == order[0] and t.user_attrs[PBT]["member"] == order[-1]
        start = t.user_attrs[PBT]["start"]
        assert start["sha256"] == parent.user_attrs[END]["sha256"]
        data = (checkpoints_dir() / start["artifact"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == start["sha256"]
        copied, own = load_checkpoint(start, "child"), load_checkpoint(parent.user_attrs[END], "parent")
        assert copied.tensors.keys() == own.tensors.keys()
        assert all(torch.equal(copied.tensors[k], own.tensors[k]) for k in own.tensors)
        # what the member's own previous segment ended with is another checkpoint: it was left behind
        previous = pop.canonical(t.user_attrs[PBT]["member"], generation - 1)
        assert previous.user_attrs[END]["sha256"] != start["sha256"]


def test_explore_changes_only_the_mutable_parameters(population):
    study, pop, _, _, _ = population
    for t in study.trials:
        info = t.user_attrs[PBT]
        if not info["generation"]:
            continue
        parent = _parent(pop, t)
        changed = {k for k in t.params if t.params[k] != parent.params[k]}
        assert changed <= set(MUTABLE)
        assert info["explored"] == {k: [parent.params[k], t.params[k]] for k in changed}
        if not info["exploited"]:
            assert not changed  # a member that goes on keeps its parameters


def test_rerun_of_a_segment_is_identical_and_checks_its_start_checkpoint(population, capsys):
    study, pop, url, cfg, data = population
    exploited = max((t for t in study.trials if t.user_attrs[PBT].get("exploited")), key=lambda t: t.number)
    r = rerun_trial(cfg.name, exploited.number, storage_url=url, data=data)
    assert r.identical and r.same_checkpoint and r.holds and r.value == exploited.value
    assert "identical, and so is the checkpoint it ended with" in r.describe()
    assert "from the checkpoint it started from" in r.compared
    # a start checkpoint changed on disk is found before anything trains from it
    path = checkpoints_dir() / exploited.user_attrs[PBT]["start"]["artifact"]
    saved = path.read_bytes()
    try:
        path.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))
        with pytest.raises(UserError, match=r"checkpoint .* has sha256 .*, the study recorded .*; it was changed"):
            rerun_trial(cfg.name, exploited.number, storage_url=url, data=data)
        path.unlink()
        with pytest.raises(UserError, match="its checkpoint .* is missing"):
            rerun_trial(cfg.name, exploited.number, storage_url=url, data=data)
    finally:
        path.write_bytes(saved)


def test_the_best_members_export_records_its_lineage_and_verifies(population, capsys, tmp_path):
    study, pop, url, cfg, data = population
    folder = export_best(cfg.name, storage_url=url, data=data, out_root=tmp_path / "exports", progress=False)
    meta = json.loads((folder / "export.json").read_text())
    best = min((t for t in study.trials if t.user_attrs[PBT]["final"]), key=lambda t: t.value)
    assert meta["trial"] == best.number and "retrain" not in meta
    lineage = meta["pbt"]
    assert lineage["member"] == best.user_attrs[PBT]["member"] and lineage["checkpoint"] == best.user_attrs[END]
    segments = lineage["segments"]
    assert [(s["first_epoch"], s["last_epoch"]) for s in segments] == [(1, 1), (2, 2), (3, 3)]
    for before, after in zip(segments, segments[1:]):
        assert after["start_sha256"] == before["end_sha256"]  # one chain of checkpoints
        assert after["took_weights_of"] in (None, before["member"])
    assert segments[-1]["trial"] == best.number and segments[0]["start_sha256"] is None
    assert set(lineage["schedule"]) == set(best.params) and lineage["schedule"]["lr"][0]["from_epoch"] == 1
    assert len(meta["history"]["train_loss"]) == len(meta["history"]["val_loss"]) == 3
    assert meta["metrics"]["val_mse"] == best.value
    v = verify_export(folder, data=data)
    assert v.ok, v.failure
    assert any(line.startswith("test_mse: recorded") for line in v.checks)
    # the weights are the member's checkpoint's
    weights = load_checkpoint(best.user_attrs[END], "best").model_weights()
    from safetensors.torch import load_file

    exported = load_file(folder / "model.safetensors")
    assert all(torch.equal(exported[k], weights[k]) for k in weights)
    # the figure: attached to the study, and on its dashboard page when the dashboard is installed
    assert {"loss.png", "reconstructions.png", "pbt-schedule.html"} <= {p.name for p in folder.iterdir()}
    attached = [a.filename for a in optuna.artifacts.get_all_artifact_meta(study)]
    assert f"{cfg.name}-trial-{best.number}-pbt-schedule.html" in attached
    html = (folder / "pbt-schedule.html").read_text()
    assert "member 0" in html and "lineage" in html and "took member" in html
    if importlib_find("optuna_dashboard"):
        stored = optuna.load_study(study_name=cfg.name, storage=open_storage(url))._storage
        keys = stored.get_study_system_attrs(study._study_id)
        assert any(k.startswith("dashboard:plot_data:pbt-schedule:") for k in keys)
    assert main(["show", cfg.name, "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "population-based training: 4 members x 3 segments of 1 epochs (3 epochs each); 2 exploits" in out
    assert f"best member {lineage['member']}: trial {best.number}" in out and "epochs 3-3:" in out


def importlib_find(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_a_finished_population_runs_nothing_more(population):
    study, _, url, cfg, data = population
    before = [(t.number, t.state, t.value) for t in study.get_trials()]
    again = run_study(cfg, storage_url=url, data=data, progress=False)
    assert [(t.number, t.state, t.value) for t in again.get_trials()] == before


@pytest.mark.mnist
def test_the_gan_trains_as_a_population_and_a_segment_reruns_identically(gan_cfg, mnist, storage, monkeypatch):
    from mnist_hpo.core.schema import PbtConfig

    cfg = gan_cfg.with_overrides(
        study_name="gan-pbt-test",
        train_subset=200,
        epochs=2,
        pruner=dataclasses.replace(gan_cfg.pruner, type="none", options={}),
        pbt=PbtConfig(population=2, interval=1, mutable=("lr_d", "lr_g")),
    )
    with one_thread():
        study = run_study(cfg, storage_url=storage, data=mnist, progress=False)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    second = [t for t in trials if t.user_attrs[PBT]["generation"] == 1]
    assert {t.user_attrs[PBT]["exploited"] for t in second} == {False, True}  # 2 members: the worse copies the better
    for t in second:
        assert set(t.user_attrs[PBT]["explored"]) <= {"lr_d", "lr_g"}
        assert "val_fid" in t.user_attrs and t.user_attrs["eval_epochs"] == [0]
    r = rerun_trial(cfg.name, second[0].number, storage_url=storage, data=mnist)
    assert r.identical and r.same_checkpoint, r.describe()
