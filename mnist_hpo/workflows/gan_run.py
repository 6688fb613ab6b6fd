"""The report's GAN run (``mnist-hpo gan`` / ``make gan``): one configuration, trained long, with pictures.

Everything goes under one run folder (the CLI passes it in, e.g. ``storage/gan/gan/``):

* ``checkpoints/epoch-NNNN/`` every ``every`` epochs and at the end: ``state-KK.safetensors``
  (both networks, both optimizers' tensors, the RNG states, in shards of at most
  :data:`~mnist_hpo.workflows.checkpoints.SHARD_BYTES` so that a record under git holds no large file) and ``state.json``
  (epoch, settings, history, the optimizers' plain values, each shard's sha256). ``LATEST``
  names the newest; a run started again continues from it, bit for bit on a CPU.
* ``grids/epoch-NNNN.png``: the same 64 noise vectors through the generator before
  training, after the first epoch, every ``every`` epochs and at the end;
  ``progress.gif`` animates them; ``first_vs_final.png`` is the report's Figure 7.
* ``losses.png``: discriminator and generator losses per epoch (the report's Figure 6),
  with the Fréchet distance and class coverage below; ``result.json``: the numbers, and ``judge``, the
  quality classifier that scored the final ones. Asked again for the epochs it has, a run trains nothing
  and is scored again; scores by an earlier judge are kept under ``rescored`` (the per-epoch history keeps
  the scores made while it trained).

Nothing is unpickled: checkpoints (:mod:`mnist_hpo.workflows.checkpoints`) are safetensors plus JSON.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from ..data.integrity import write_text_atomically
from ..errors import UserError
from ..models.gan import GAN, sample_sphere
from ..tasks.gan import GanTask
from ..train.gan import GanHistory, fit_gan
from ..train.loops import seed_everything
from .checkpoints import SHARD_BYTES, load_checkpoint, save_checkpoint  # noqa: F401  (SHARD_BYTES: the docstring's)

GRID_SIZE = 64  # 8 x 8 images
REPORT_FINAL_LOSSES = {"d_loss": 0.81, "g_loss": 1.20}


# --- pictures ---------------------------------------------------------------------------------


def save_grid(images: torch.Tensor, path: Path, caption: str) -> None:
    """An 8-column grid of [-1, 1] images, scaled x2, with a caption strip, as PNG."""
    grid = make_grid((images.detach().cpu().clamp(-1, 1) + 1) / 2, nrow=8, padding=2, pad_value=1.0)
    array = (grid[0] * 255).round().to(torch.uint8).numpy()
    img = Image.fromarray(array, mode="L")
    img = img.resize((img.width * 2, img.height * 2), Image.Resampling.NEAREST)
    canvas = Image.new("L", (img.width, img.height + 18), 255)
    canvas.paste(img, (0, 18))
    ImageDraw.Draw(canvas).text((4, 3), caption, fill=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


GIF_LEVELS = 16  # grey levels of the animation: a third of the 256-level file; each grid PNG keeps all 256


def save_gif(grid_dir: Path, path: Path, *, ms_per_frame: int = 300) -> int:
    step = 256 // GIF_LEVELS
    frames = [
        Image.open(p).convert("L").point(lambda v: v // step * 255 // (GIF_LEVELS - 1))
        for p in sorted(grid_dir.glob("epoch-*.png"))
    ]
    if frames:
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return len(frames)


def save_side_by_side(first: Path, last: Path, path: Path) -> None:
    a, b = Image.open(first), Image.open(last)
    canvas = Image.new("L", (a.width + b.width + 16, max(a.height, b.height)), 255)
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + 16, 0))
    canvas.save(path)


def save_loss_plot(history: GanHistory, path: Path) -> None:
    epochs = list(range(1, len(history.d_loss) + 1))
    fig = Figure(figsize=(8, 7))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(epochs, history.d_loss, label="discriminator")
    top.plot(epochs, history.g_loss, label="generator")
    for (name, value), color in zip(REPORT_FINAL_LOSSES.items(), ("C0", "C1")):
        top.axhline(value, color=color, linestyle=":", linewidth=1, label=f"report's final {name[0].upper()} ({value})")
    top.set_ylabel("BCE loss")
    top.legend()
    top.set_title("GAN losses per epoch")
    if history.eval_epochs:
        x = [e + 1 for e in history.eval_epochs]
        # Scored only every eval_every epochs: markers at those epochs, not a curve through them.
        bottom.plot(x, history.fid, "o", color="C2", markersize=4, label="Fréchet distance vs test images")
        bottom.set_yscale("log")
        bottom.set_ylabel("Fréchet distance (log)")
        right = bottom.twinx()
        right.plot(x, history.coverage_tv, "s", color="C3", markersize=4, label="class coverage TV")
        right.set_ylabel("class coverage TV (0 = uniform)")
        right.set_ylim(0, 1)
        lines = bottom.get_lines() + right.get_lines()
        bottom.legend(lines, [ln.get_label() for ln in lines])
    bottom.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- the run ----------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one run trains and writes: the model, its optimizers and RNG, its settings and its folder."""

    task: GanTask
    folder: Path
    params: dict[str, Any]
    settings: dict[str, Any]
    model: GAN
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator
    fixed_noise: torch.Tensor

    @classmethod
    def start(cls, task: GanTask, params: dict[str, Any], folder: Path, seed: int) -> _Run:
        p = task.with_report_defaults(params)
        arch = task.arch(p)
        settings = {
            "params": p,
            "arch": arch,
            "seed": seed,
            "dataset": task.data.checksum,
            "train_images": len(task.train_all),
            "eval_every": task.options["eval_every"],
            "eval_samples": task.options["eval_samples"],
        }
        rng = seed_everything(seed)
        model = task.build(arch).to(task.device)
        opt_g, opt_d = task.optimizers(model, p)
        fixed_noise = sample_sphere(
            GRID_SIZE, model.latent_dim, generator=torch.Generator().manual_seed(seed + 1), device=task.device
        )
        return cls(task, folder, p, settings, model, opt_g, opt_d, rng, fixed_noise)

    @property
    def grids(self) -> Path:
        return self.folder / "grids"

    def grid(self, epoch: int) -> None:
        self.model.generator.eval()
        with torch.no_grad():
            save_grid(self.model.generator(self.fixed_noise), self.grids / f"epoch-{epoch:04d}.png", f"epoch {epoch}")
        self.model.generator.train()

    def restore(self) -> tuple[int, GanHistory] | None:
        return load_checkpoint(
            self.folder, model=self.model, opt_g=self.opt_g, opt_d=self.opt_d, rng=self.rng, settings=self.settings
        )

    def checkpoint(self, epoch: int, history: GanHistory) -> None:
        save_checkpoint(
            self.folder,
            epoch=epoch,
            model=self.model,
            opt_g=self.opt_g,
            opt_d=self.opt_d,
            rng=self.rng,
            history=history,
            settings=self.settings,
        )

    def fit(
        self, start: int, history: GanHistory, *, epochs: int, every: int, log: Callable[[str], object]
    ) -> GanHistory:
        """Train from epoch ``start`` to ``epochs``: a grid after the first epoch, a grid and a checkpoint every
        ``every`` epochs and at the end."""

        def after_epoch(epoch: int, hist: GanHistory) -> None:
            done = epoch + 1
            if done == 1 or done % every == 0 or done == epochs:
                self.grid(done)
            if done % every == 0 or done == epochs:
                self.checkpoint(done, hist)
                fid = (
                    f", Fréchet distance {hist.fid[-1]:.2f}"
                    if hist.eval_epochs and hist.eval_epochs[-1] == epoch
                    else ""
                )
                log(
                    f"epoch {done}/{epochs}: D {hist.d_loss[-1]:.3f}, G {hist.g_loss[-1]:.3f}{fid} "
                    f"({hist.seconds[-1]:.1f} s/epoch)"
                )

        model = self.model
        return fit_gan(
            model.generator,
            model.discriminator,
            self.opt_g,
            self.opt_d,
            self.task.train_all,
            epochs=epochs,
            batch_size=int(self.params["batch_size"]),
            latent_dim=model.latent_dim,
            rng=self.rng,
            start_epoch=start,
            history=history,
            evaluate=self.task.evaluator(model, "test", epochs=epochs),
            after_epoch=after_epoch,
        )


def run_gan(
    task: GanTask,
    params: dict[str, Any],
    folder: Path,
    *,
    epochs: int,
    seed: int,
    every: int = 10,
    fresh: bool = False,
    log: Callable[[str], object] = print,
) -> dict[str, Any]:
    """Train (or continue) the run in ``folder`` up to ``epochs``; write pictures and ``result.json``; return it."""
    if every < 1:
        raise UserError(f"--every must be at least 1, got {every}")
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    run = _Run.start(task, params, folder, seed)
    restored = run.restore()
    start, history = restored if restored is not None else (0, GanHistory())
    if restored is None:
        run.grid(0)
    else:
        log(f"resuming {folder} from its checkpoint after epoch {start}")
    start_time = time.perf_counter()
    if start < epochs:
        history = run.fit(start, history, epochs=epochs, every=every, log=log)
    trained = len(history.d_loss)
    final = task.test(run.model)
    frames = _pictures(history, folder, run.grids)
    result = {
        "epochs": trained,
        "settings": run.settings,
        "final": {
            "d_loss": history.d_loss[-1] if trained else None,
            "g_loss": history.g_loss[-1] if trained else None,
            **final,
        },
        **task.provenance(),
        "report_final_losses": REPORT_FINAL_LOSSES,
        "median_seconds_per_epoch": statistics.median(history.seconds) if history.seconds else None,
        "seconds_this_session": round(time.perf_counter() - start_time, 1),
        "device": str(task.device),
        "gif_frames": frames,
        "history": history.as_dict(),
    }
    _keep_earlier_scores(result, folder / "result.json", final)
    write_text_atomically(folder / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def _pictures(history: GanHistory, folder: Path, grids: Path) -> int:
    """The losses' plot, the grids' animation and the first grid beside the last; the animation's frames."""
    save_loss_plot(history, folder / "losses.png")
    frames = save_gif(grids, folder / "progress.gif")
    first = grids / "epoch-0001.png"
    last = grids / f"epoch-{len(history.d_loss):04d}.png"
    if first.exists() and last.exists():
        save_side_by_side(first, last, folder / "first_vs_final.png")
    return frames


def _keep_earlier_scores(result: dict[str, Any], path: Path, final: dict[str, Any]) -> None:
    """Asked again for the epochs it has, a run is scored again; by another judge, the earlier scores are kept
    (``result["rescored"]``, from the ``result.json`` at ``path``)."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = {}
    result["rescored"] = previous.get("rescored", []) if isinstance(previous.get("rescored"), list) else []
    if previous.get("epochs") == result["epochs"] and previous.get("judge") != result.get("judge"):
        result["rescored"].append(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "judge_before": previous.get("judge"),
                "final_before": {k: previous.get("final", {}).get(k) for k in final},
            }
        )
    if not result["rescored"]:
        del result["rescored"]
