"""The ``[study]`` settings, one row each: the TOML types a study file may give and the flag that overrides it.

Everything that names a study setting reads this table: the study file's check of ``[study]``
(:mod:`mnist_hpo.core.parse`), :meth:`StudyConfig.with_overrides <mnist_hpo.core.schema.StudyConfig.with_overrides>`
(a flag's name is also a keyword there: ``subset=`` for ``train_subset``), the command line's flags
(:func:`mnist_hpo.cli.build_parser` makes one per row that has a :class:`Flag`) and its light checks
(:mod:`mnist_hpo.commands.checks`: a flag that changes what a trial means needs ``--study-name``).
A new setting is a field of :class:`~mnist_hpo.core.schema.StudyConfig` and a row here; a row without
a flag is set in the study file only, on purpose.

Nothing here imports more than the standard library: the command line reads it before any heavy import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The commands whose every flag mirrors a setting: each row's flag is on both, with its own help.
RUN_COMMANDS = ("study", "worker")


@dataclass(frozen=True)
class Flag:
    """The command-line flag of one setting.

    ``kind``: ``"count"`` a whole number of at least 1, ``"int"`` any whole number, ``"text"`` a string,
    ``"off"`` a switch that sets the setting to false. ``help`` is its help on ``study`` and ``worker``;
    ``elsewhere`` names the other commands that take it, each with its help there.
    """

    name: str
    help: str
    kind: str = "count"
    elsewhere: Mapping[str, str] = field(default_factory=dict)

    @property
    def keyword(self) -> str:
        """The flag as a Python name (``--study-name``: ``study_name``), which with_overrides also accepts."""
        return self.name.removeprefix("--").replace("-", "_")

    @property
    def metavar(self) -> str | None:
        return None if self.kind == "off" else self.keyword.upper()

    def help_on(self, command: str) -> str | None:
        """Its help on ``command``, or None where that command does not take it."""
        return self.help if command in RUN_COMMANDS else self.elsewhere.get(command)


@dataclass(frozen=True)
class Setting:
    """One ``[study]`` key: a field of StudyConfig, the TOML types it accepts, and its flag (None: file only)."""

    key: str
    types: tuple[type, ...]
    flag: Flag | None = None


DEVICE_HELP = "auto, cpu or cuda[:N]"

# In the order a study file lists them, which is the order their mistakes are found in.
STUDY_SETTINGS: tuple[Setting, ...] = (
    Setting("name", (str,), Flag("--study-name", "store under this study name instead of the file's", "text")),
    Setting("dataset", (str,)),
    Setting("idx_dir", (str,)),
    Setting("seed", (int,), Flag("--seed", "override the study seed (a new study: needs --study-name)", "int")),
    Setting(
        "trials",
        (int,),
        Flag(
            "--trials",
            "override the number of trials",
            elsewhere={"reproduce": "override every study's trials (a short record)"},
        ),
    ),
    Setting(
        "epochs",
        (int,),
        Flag(
            "--epochs",
            "override the epochs per trial (a new study: needs --study-name)",
            elsewhere={
                "gan": "override the epochs (a longer run continues a finished one)",
                "reproduce": "override every study's epochs (a short record)",
            },
        ),
    ),
    Setting("batch_size", (int,)),
    Setting("val_fraction", (float,)),
    Setting(
        "train_subset",
        (int,),
        Flag(
            "--subset",
            "use only the first N training images, a short run (a new study: needs --study-name)",
            elsewhere={
                "gan": "use only the first N training images (a short run)",
                "reproduce": "train on the first N images only (a short record)",
            },
        ),
    ),
    Setting("test_subset", (int,)),
    Setting("retrain", (bool,)),
    Setting(
        "device",
        (str,),
        Flag(
            "--device",
            "auto, cpu or cuda[:N] (default: the study file's, else auto)",
            "text",
            elsewhere={"gan": DEVICE_HELP, "reproduce": DEVICE_HELP},
        ),
    ),
    Setting(
        "batch_trials", (int,), Flag("--batch-trials", "train N trials at once, stacked (autoencoder, classifier)")
    ),
    Setting(
        "trial_figures",
        (bool,),
        Flag("--no-trial-figures", "attach no reconstruction figure to each trial (smaller storage)", "off"),
    ),
    Setting("objectives", (list,)),
    Setting("enqueue", (list,)),
)


def flags_on(command: str) -> list[tuple[Setting, str]]:
    """The settings ``command`` takes a flag for, each with that flag's help there, in the table's order."""
    return [(s, help) for s in STUDY_SETTINGS if s.flag is not None and (help := s.flag.help_on(command)) is not None]


# The flags' names as with_overrides keywords, where they differ from the setting's (study_name -> name).
FLAG_KEYWORDS = {
    s.flag.keyword: s.key
    for s in STUDY_SETTINGS
    if s.flag is not None and s.flag.kind != "off" and s.flag.keyword != s.key
}
