"""Which task class a study's ``model.type`` names: a built-in family, an installed plugin, or an import path.

``model.type`` is looked up in this order:

1. a built-in family (``autoencoder``, ``denoising``, ``classifier``, ``gan``), or the ``model_type``
   of a :class:`~mnist_hpo.tasks.Task` subclass the running process has already defined;
2. the name of an entry point in the group :data:`GROUP` (``mnist_hpo.tasks``) that an installed
   distribution registers, e.g. ``[project.entry-points."mnist_hpo.tasks"] my-model = "my_package.task:MyTask"``;
3. ``"package.module:ClassName"``.

Security: importing a module runs its code. Built-ins and installed entry points are code the
user installed. An import path (3) is imported only when the user asked for it: it is written in
a study file the user runs (:func:`trust_study_file`), its module is named by
``--trust-plugin package.module`` (:func:`trust`, a package trusts its submodules), it is the value
of an installed entry point, or the running process has already imported that module (so nothing
new runs). A path read from a stored study or an export is never imported on its own say-so:
:func:`resolve` refuses it with one line that says how to trust it.

What provided a non-built-in family (its import path, distribution and version:
:func:`provider`) is part of a study's identity and of every export (see docs/plugins.md).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ..errors import UserError
from .base import Task
from .known import BUILTIN, REGISTRY

GROUP = "mnist_hpo.tasks"
_trusted: set[str] = set()  # modules (and packages) the user trusts, for this process
_loaded: dict[str, type[Task]] = {}  # model.type -> its class, once loaded from an entry point or a path


@dataclass(frozen=True)
class Provider:
    """Where a family's task class comes from: its import path and the distribution that installed it."""

    path: str  # "package.module:ClassName"
    distribution: str | None  # None: no installed distribution provides the module (a local file)
    version: str | None

    def record(self) -> dict[str, str | None]:
        return {"path": self.path, "distribution": self.distribution, "version": self.version}

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "no installed distribution"
        return f"{self.path} ({dist})"


def trust(modules: Iterable[str]) -> None:
    """Allow importing these modules (and their submodules) when a stored study or export names them."""
    _trusted.update(m.strip() for m in modules if m and m.strip())


def trusted() -> tuple[str, ...]:
    """The modules this process trusts (:func:`trust`): what a worker process it starts must trust too."""
    return tuple(sorted(_trusted))


def trust_study_file(model_type: str) -> None:
    """A study file the user runs may name an import path: running the file is asking for it."""
    if is_path(model_type):
        trust([model_type.partition(":")[0]])


def is_path(model_type: str) -> bool:
    return ":" in model_type


def builtin_names() -> list[str]:
    return list(BUILTIN)


def _is_builtin_class(cls: type) -> bool:
    return cls.__module__.startswith("mnist_hpo.")


def is_builtin(model_type: str) -> bool:
    return model_type in BUILTIN


def entry_points() -> dict[str, metadata.EntryPoint]:
    """The installed distributions' entry points in :data:`GROUP`, by name."""
    return {ep.name: ep for ep in metadata.entry_points(group=GROUP)}


def _is_trusted(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in _trusted)


def _unknown(model_type: str, eps: dict[str, metadata.EntryPoint]) -> UserError:
    plugins = (
        f"an installed plugin ({', '.join(sorted(eps))})"
        if eps
        else f"an installed plugin (none is: a distribution registers one as an entry point in group {GROUP})"
    )
    return UserError(
        f"model.type must be one of {', '.join(builtin_names())}, {plugins}, or an import path "
        f'"package.module:ClassName", got {model_type!r}'
    )


def _import(model_type: str, path: str, recorded: dict[str, Any] | None) -> type[Task]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(
            f"model type {model_type!r}: cannot import {module_name} ({e}); {_install_hint(recorded, module_name)}"
        ) from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UserError(
            f"model type {model_type!r}: {module_name} has no task class {attr!r} (a subclass of "
            'mnist_hpo.tasks.Task); fix the import path "package.module:ClassName"'
        )
    return cls


def _install_hint(recorded: dict[str, Any] | None, module_name: str) -> str:
    dist = (recorded or {}).get("distribution")
    if dist:
        version = (recorded or {}).get("version")
        pin = f"=={version}" if version else ""
        return f"install the distribution {dist}{pin} that provides it (pip install '{dist}{pin}') and run again"
    return f"install the distribution that provides {module_name.split('.')[0]} and run again"


def resolve(model_type: str, *, recorded: dict[str, Any] | None = None) -> type[Task]:
    """The task class ``model_type`` names (see the module docstring); one :class:`UserError` line if none.

    ``recorded``: what a stored study or export recorded of its provider (:meth:`Provider.record`),
    so that a missing plugin is named by the distribution to install.
    """
    if model_type in BUILTIN:
        return BUILTIN[model_type]
    if model_type in REGISTRY:  # a Task subclass this process defined (e.g. in a notebook)
        return REGISTRY[model_type]
    if model_type in _loaded:
        return _loaded[model_type]
    eps = entry_points()
    if not is_path(model_type):
        ep = eps.get(model_type)
        if ep is None:
            if recorded and recorded.get("distribution"):
                raise UserError(
                    f"model type {model_type!r} comes from the plugin distribution "
                    f"{recorded['distribution']}, which is not installed here; "
                    f"{_install_hint(recorded, model_type)}"
                )
            raise _unknown(model_type, eps)
        cls = _import(model_type, ep.value, recorded or ({"distribution": ep.dist.name} if ep.dist else None))
    else:
        module_name = model_type.partition(":")[0]
        installed = any(ep.value.replace(" ", "") == model_type for ep in eps.values())
        if not (installed or _is_trusted(module_name) or module_name in sys.modules):
            raise UserError(
                f"model type {model_type!r} would import {module_name}, which no installed distribution "
                f"registers as a plugin (entry point group {GROUP}); importing runs its code, so a "
                f"stored study or export cannot ask for it: if you trust it, add --trust-plugin "
                f"{module_name}"
            )
        cls = _import(model_type, model_type, recorded)
    _loaded[model_type] = cls
    return cls


def provider(model_type: str) -> Provider:
    """The import path, distribution and version of ``model_type``'s task class (resolving it)."""
    cls = resolve(model_type)
    path = f"{cls.__module__}:{cls.__qualname__}"
    dist = None
    eps = {} if _is_builtin_class(cls) else entry_points()
    if _is_builtin_class(cls):
        dist = "mnist-hpo"
    elif not is_path(model_type) and model_type in eps and (ep_dist := eps[model_type].dist) is not None:
        dist = ep_dist.name
    else:
        for ep in eps.values():  # an installed entry point names this class
            if ep.value.replace(" ", "") == path and ep.dist is not None:
                dist = ep.dist.name
                break
        else:  # ~0.2 s: reads every installed distribution's file list; only for a non-built-in family
            names = metadata.packages_distributions().get(cls.__module__.split(".")[0]) or []
            dist = names[0] if names else None
    version = None
    if dist:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            dist = None
    return Provider(path, dist, version)


def identity(model_type: str) -> dict[str, Any]:
    """What a study's identity records of its family's provider: nothing for a built-in (identities unchanged)."""
    if is_builtin(model_type):
        return {}
    p = provider(model_type)
    return {"plugin.path": p.path, "plugin.distribution": p.distribution, "plugin.version": p.version}


def recorded_in_identity(identity: dict[str, Any]) -> dict[str, Any] | None:
    """The provider a stored study's identity records (:func:`identity`), or None (a built-in)."""
    if "plugin.path" not in identity:
        return None
    return {
        "path": identity["plugin.path"],
        "distribution": identity.get("plugin.distribution"),
        "version": identity.get("plugin.version"),
    }


def check_recorded(model_type: str, recorded: dict[str, Any] | None, where: str) -> tuple[type[Task], str]:
    """Resolve ``model_type`` as read from a stored study or export (``where`` names it).

    Returns (the class, a warning line or "") — the warning when the installed plugin's version or
    import path differs from the recorded one: its numbers may differ, and the comparison decides.
    """
    cls = resolve(model_type, recorded=recorded)
    if not recorded or is_builtin(model_type):
        return cls, ""
    now = provider(model_type)
    diffs = []
    if recorded.get("distribution") != now.distribution or recorded.get("version") != now.version:
        diffs.append(
            f"it was made with {recorded.get('distribution')} {recorded.get('version')}, "
            f"this environment has {now.distribution} {now.version}"
        )
    if recorded.get("path") and recorded["path"] != now.path:
        diffs.append(f"its task class was {recorded['path']}, now {now.path}")
    if not diffs:
        return cls, ""
    return cls, f"{where}: model type {model_type!r}: {'; '.join(diffs)}; the comparison below decides"
