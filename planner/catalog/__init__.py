"""The catalog: where entries' YAML files are found, which file wins, and the registry of kinds.

The nouns themselves are in `planner.catalog.schema` (accelerators, clusters, MFU profiles),
`planner.catalog.models`, `planner.catalog.campaigns`, `planner.laws`, `planner.grant.programs`, `planner.shapes`
(shape recipes) and `planner.hparams` (hyperparameter laws);
each kind is registered below by the path of its schema, imported only when a file of that kind is read.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from functools import cache
from pathlib import Path
from typing import Any

from planner.catalog.schema import (
    Accelerator,
    Accounting,
    Cluster,
    Dtype,
    Entry,
    Link,
    MfuPoint,
    MfuProfile,
    Partition,
    Price,
    Slug,
    Source,
    Sourced,
    Status,
    Strict,
)
from planner.errors import PlannerError, unknown_name
from planner.files import read_input
from planner.yamlio import MAX_BYTES, key_line, load_model

__all__ = ["KINDS", "ENV_VAR", "Catalog", "builtin_dir", "search_path", "model_for", "load_entry",
           "Accelerator", "Accounting", "Cluster", "Dtype", "Entry", "Link", "MfuPoint", "MfuProfile", "Partition", "Price",
           "Slug", "Source", "Sourced", "Status", "Strict"]

# kind (the directory name) -> (the schema of one file, as module:class; what one entry is called)
REGISTRY: dict[str, tuple[str, str]] = {
    "accelerators": ("planner.catalog.schema:Accelerator", "accelerator"),
    "clusters": ("planner.catalog.schema:Cluster", "cluster"),
    "mfu": ("planner.catalog.schema:MfuProfile", "MFU profile"),
    "laws": ("planner.laws:Law", "law"),
    "models": ("planner.catalog.models:Model", "model"),
    "programs": ("planner.grant.programs:Program", "grant program"),
    "campaigns": ("planner.catalog.campaigns:CampaignSet", "campaign set"),
    "shapes": ("planner.shapes:Recipe", "shape recipe"),
    "hparams": ("planner.hparams:HyperparameterLaw", "hyperparameter law"),
}
KINDS = tuple(REGISTRY)
KIND_LABEL = {kind: label for kind, (_, label) in REGISTRY.items()}
# the input that names an entry of each kind, for errors about a name that is not in the catalog
KIND_FIELD = {"accelerators": "accelerator", "clusters": "cluster", "mfu": "mfu_profile", "laws": "law", "models": "model",
              "programs": "program", "shapes": "shape", "hparams": "hparams"}
ENV_VAR = "PLANNER_CATALOG_PATH"


# --- Catalog directories -------------------------------------------------------------------------


def builtin_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # planner/
    installed = package / "catalogs"  # inside the wheel
    return installed if installed.is_dir() else package.parent / "catalogs"  # source checkout


def search_path(extra: tuple[str, ...] | list[str] = ()) -> tuple[Path, ...]:
    """Built-in catalogs first, then $PLANNER_CATALOG_PATH, then the directories in `extra` (given on the command line): later wins."""
    dirs = [builtin_dir()]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in extra]
    for d in dirs[1:]:
        if not d.is_dir():
            problem = "is not a directory" if os.path.lexists(d) else "does not exist"
            raise PlannerError(f"catalog directory '{d}' {problem}")
    return tuple(dirs)


class Catalog:
    """Name → file index over the search path; files are parsed only when asked for."""

    def __init__(self, dirs: tuple[Path, ...] | None = None):
        self.dirs = dirs if dirs is not None else search_path()
        self._files: dict[str, dict[str, Path]] = {}
        self._fingerprint: str | None = None
        self.derived: dict[str, Any] = {}  # values computed from the entries (the fitted throughput estimator)
        self.used: set[tuple[str, str]] = set()  # (kind, name) of every entry read: provenance names those overridden

    def fingerprint(self) -> str:
        """sha256 over every entry in effect (kind, name and file bytes, after overrides): equal
        fingerprints mean equal catalog numbers, wherever the catalogs are installed."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for kind in KINDS:
                for name, path in sorted(self.files(kind).items()):
                    digest.update(f"{kind}/{name}\0".encode())
                    digest.update(_entry_bytes(path))
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def provenance(self) -> dict:
        """What a result was computed with, for the record: the planner version and the catalog data."""
        from planner import __version__

        out: dict[str, Any] = {"planner": __version__, "catalog_sha256": self.fingerprint()[:16],
                               "user_catalog_dirs": len(self.dirs) - 1}
        # an entry from a user directory that replaces one of the same name is used silently otherwise
        overrides = [{"kind": kind, "name": name, "file": str(self.files(kind)[name]), "over": [str(p) for p in over]}
                     for kind, name in sorted(self.used) if (over := self.overridden(kind, name))]
        if overrides:  # absent, not empty, when nothing is overridden: results without overrides read as before
            out["overrides"] = overrides
        return out

    def overridden(self, kind: str, name: str) -> list[Path]:
        """The files of earlier catalog directories that the entry `name` of `kind` in effect replaces (the
        built-in one first); empty when no other directory has an entry of that name."""
        winner = self.files(kind).get(name)
        return [d / kind / f"{name}.yaml" for d in self.dirs
                if (d / kind / f"{name}.yaml").is_file() and d / kind / f"{name}.yaml" != winner]

    def files(self, kind: str) -> dict[str, Path]:
        if kind not in self._files:
            found: dict[str, Path] = {}
            for d in self.dirs:
                sub = d / kind
                try:
                    if sub.is_dir():
                        for f in sorted(sub.glob("*.yaml")):
                            found[f.stem] = f
                except OSError as exc:  # is_dir() raises for a directory it may not search
                    raise PlannerError(f"catalog directory '{d}': cannot read {kind}/: {exc.strerror}") from None
            self._files[kind] = found
        return self._files[kind]

    def names(self, kind: str) -> list[str]:
        return sorted(self.files(kind))

    def get(self, kind: str, name: str):
        files = self.files(kind)
        if name not in files:
            raise unknown_name(KIND_LABEL[kind], name, files, KIND_FIELD.get(kind))
        self.used.add((kind, name))
        return load_entry(kind, files[name])

    def all(self, kind: str) -> list:
        return [self.get(kind, n) for n in self.names(kind)]

    def accelerator(self, name: str) -> Accelerator:
        return self.get("accelerators", name)

    def cluster(self, name: str) -> Cluster:
        return self.get("clusters", name)

    def mfu_profile(self, name: str) -> MfuProfile:
        return self.get("mfu", name)

    def law(self, name: str):
        return self.get("laws", name)

    def model(self, name: str):
        return self.get("models", name)

    def recipe(self, name: str):
        return self.get("shapes", name)

    def hparam_law(self, name: str):
        return self.get("hparams", name)

    def find(self, name: str) -> tuple[str, Any]:
        """Look a name up in every kind (for `catalog show NAME`)."""
        for kind in KINDS:
            if name in self.files(kind):
                return kind, self.get(kind, name)
        everything = [n for kind in KINDS for n in self.files(kind)]
        raise unknown_name("catalog entry", name, everything)


def model_for(kind: str) -> type[Entry]:
    """The schema of one file of `kind`; a kind's module is imported only when one of its files is read."""
    module, _, cls = REGISTRY[kind][0].partition(":")
    return getattr(importlib.import_module(module), cls)


@cache
def _load_cached(kind: str, path: Path, mtime: float):
    entry = load_model(model_for(kind), path)
    if entry.name != path.stem:
        raise PlannerError(f"'{entry.name}' must equal the file name '{path.stem}'", "name",
                           where=f"{path}:{key_line(path, ('name',))}")
    return entry


def load_entry(kind: str, path: Path):
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = -1.0  # dangling, looping, unreadable: reading it says which, on one line
    return _load_cached(kind, path, mtime)


def _entry_bytes(path: Path) -> bytes:
    """What the fingerprint hashes of one entry's file: its bytes, read as `load_entry` reads them (a regular
    file of at most yamlio.MAX_BYTES). An entry that cannot be read hashes as such: it fails only the
    command that uses it, and a FIFO, a device or a huge file is never read whole."""
    try:
        return read_input(path, "YAML", MAX_BYTES)
    except PlannerError:
        return b"\0unreadable catalog entry\0"
