"""benchmarks/finetune.py: frozen against fine-tuned encoder, at the smallest size (600 images, 1 epoch)."""

import importlib.util
import json

from .conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("finetune_script", ROOT / "benchmarks" / "finetune.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frozen_and_finetuned_side_by_side(ae_export, capsys):
    _, _, folder = ae_export
    assert (
        _script().main([str(folder), "--subset", "600", "--test-subset", "200", "--epochs", "1", "--device", "cpu"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["train_images"] == 600 and result["head"]["nh1"] == 271
    for mode in ("frozen", "finetuned"):
        assert 0 <= result[mode]["test_accuracy"] <= 1
    assert result["difference"] == result["finetuned"]["test_accuracy"] - result["frozen"]["test_accuracy"]


def test_not_an_export_is_one_error_line(tmp_path, capsys):
    assert _script().main([str(tmp_path), "--subset", "600", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mnist-hpo: error: ")


def test_head_from_a_classifier_export_takes_its_head_seed_and_encoder(model_exports, capsys):
    _, _, folders = model_exports
    meta = json.loads((folders["classifier"] / "export.json").read_text())
    argv = [
        "--head-from",
        str(folders["classifier"]),
        "--subset",
        "600",
        "--test-subset",
        "200",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]
    assert _script().main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["head"] == meta["params"] and result["seed"] == meta["seed"]
    assert result["export"] == meta["model"]["options"]["encoder_export"]


def test_head_from_an_autoencoder_export_is_one_error_line(ae_export, capsys):
    assert _script().main(["--head-from", str(ae_export[2]), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a classifier export" in err[0]
