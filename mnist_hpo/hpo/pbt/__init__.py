"""Population-based training inside an Optuna study: every segment of every member's training is a trial.

A study file's ``[pbt]`` table (:mod:`mnist_hpo.core.pbt`) turns it on; docs/pbt.md describes it.
The engine is a few private modules, re-exported here:

* ``_records``: which trial is which segment, and where the population stands, from storage alone;
* ``_explore``: exploit and explore, planned from a generation's results;
* ``_checkpoints``: checkpoints in the study's artifact store, checked by sha256; one segment's training;
* ``_run``: a worker's loop (any number of workers share a study);
* ``_lineage``: the best member's lineage and schedule (``show``, export);
* ``_figure``: the study's figure of the hyperparameters over the epochs;
* ``_member``: a member as an export, a segment as a rerun.
"""

from ._checkpoints import load_checkpoint, save_checkpoint, train_segment
from ._explore import NoParent, Plan, explore, plan, ranking
from ._figure import attach_figure, schedule_figure
from ._lineage import lineage, lineage_record, schedule_lines
from ._member import member_export, rerun_segment
from ._records import DISCARDED, END, PBT, Population, is_final, is_segment
from ._run import queue_next, queue_population, run_population, segment_seed

__all__ = [
    "DISCARDED",
    "END",
    "NoParent",
    "PBT",
    "Plan",
    "Population",
    "attach_figure",
    "explore",
    "is_final",
    "is_segment",
    "lineage",
    "lineage_record",
    "load_checkpoint",
    "member_export",
    "plan",
    "queue_next",
    "queue_population",
    "ranking",
    "rerun_segment",
    "run_population",
    "save_checkpoint",
    "schedule_figure",
    "schedule_lines",
    "segment_seed",
    "train_segment",
]
