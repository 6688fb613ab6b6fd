"""A plugin of the test suite's own, named by import path and never installed, used as docs/plugins.md says.

``tests/plugins/tinyplug`` is on the processes' ``PYTHONPATH``, as a model being developed before it is
packaged. Its study is tuned from a study file with ``--workers 2``, shown without trusting its code,
exported, verified and rerun: each step its own ``mnist-hpo`` process, as a user runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import DATA, PLUGINS, ROOT, tinyplug_study

pytestmark = [pytest.mark.processes, pytest.mark.slow, pytest.mark.mnist]  # trains on the MNIST cache

# maximises val_acc: the study file a user writes for a model under development, named by import path
STUDY = tinyplug_study(name="tiny-plugin", seed=0, trials=2, epochs=1, train_subset=200)


def test_an_import_path_plugin_is_tuned_by_workers_shown_untrusted_exported_verified_and_rerun(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(PLUGINS)]),
        "MNIST_HPO_STORAGE_DIR": str(tmp_path / "storage"),
        "MNIST_HPO_DATA": str(DATA),
    }

    def mnist_hpo(*args: str) -> str:
        p = subprocess.run(
            [sys.executable, "-m", "mnist_hpo", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, (args, p.stdout + p.stderr)
        return p.stdout

    (tmp_path / "tiny.toml").write_text(STUDY)
    # Running the file trusts its import path, for the workers it starts too.
    assert "study tiny-plugin: 2 complete" in mnist_hpo(
        "study", "tiny.toml", "--workers", "2", "--quiet", "--no-retrain"
    )

    shown = mnist_hpo("show", "tiny-plugin").splitlines()  # read without the plugin's code
    header = next(line for line in shown if line.startswith("Trial"))
    assert header.split()[-1] == "val_acc", header
    rows = [line.split() for line in shown if line[:5].strip().isdigit()]
    values = [float(r[-1]) for r in rows]
    assert len(rows) == 2 and values == sorted(values, reverse=True)  # maximised: best first
    best = rows[0][0]

    # A stored study asks for its code only with --trust-plugin (docs/plugins.md, Security).
    exported = mnist_hpo("export", "tiny-plugin", "--trust-plugin", "tinyplug", "--quiet")
    assert f"exported trial {best} of tiny-plugin" in exported and "test_acc" in exported, exported
    folder = tmp_path / "storage" / "exports" / "tiny-plugin" / f"trial-{best}"
    assert f"{folder}: verified" in mnist_hpo("verify", str(folder), "--trust-plugin", "tinyplug")
    rerun = mnist_hpo("rerun", "tiny-plugin", best, "--trust-plugin", "tinyplug")
    assert f"trial {best} " in rerun and "val_acc" in rerun and "(identical)" in rerun, rerun
