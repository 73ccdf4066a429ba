"""Catalog nouns (accelerators, clusters, MFU profiles, laws) and where their YAML files are found.

Every number in a catalog is a `Sourced` value: the number plus the key of a citation in the
entry's own `sources` map, with a status (verified / secondary / unverified / derived).
"""

from __future__ import annotations

import hashlib
import math
import os
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner.errors import PlannerError, unknown_name
from planner.yamlio import load_model

Status = Literal["verified", "secondary", "unverified", "derived"]
Dtype = Literal["fp64", "fp64_tensor", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)]
KINDS = ("accelerators", "clusters", "mfu", "laws", "models", "programs", "campaigns")
ENV_VAR = "PLANNER_CATALOG_PATH"


class Strict(BaseModel):
    """Unknown keys are errors; so are YAML's true/false/yes/no where a number or name belongs
    (pydantic would otherwise read `nodes: yes` as 1 node)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if isinstance(value, bool) and field is not None and "bool" not in str(field.annotation):
                    raise ValueError(f"{key}: expected a value, not {str(value).lower()}")
        return data


class Source(Strict):
    citation: str = Field(min_length=3)
    status: Status
    url: str | None = None


class Sourced(Strict):
    """A number with its provenance. `status` defaults to the status of the cited source."""

    value: float
    source: str
    status: Status | None = None
    note: str | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class Entry(Strict):
    """Common to every catalog file: a unique name, a title and the citations its numbers use."""

    name: Slug
    title: str
    notes: str | None = None
    sources: dict[str, Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _sources_resolve(self) -> "Entry":
        for path, item in _walk_sourced(self):
            if item.source not in self.sources:
                raise ValueError(f"{path}: source '{item.source}' is not a key of `sources` ({', '.join(self.sources)})")
        return self

    def status_of(self, item: Sourced) -> Status:
        return item.status or self.sources[item.source].status

    def cite(self, item: Sourced) -> str:
        return self.sources[item.source].citation

    def sourced_numbers(self) -> list[tuple[str, Sourced]]:
        return list(_walk_sourced(self))


def _walk_sourced(obj: Any, path: str = ""):
    if isinstance(obj, Sourced):
        yield path, obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _walk_sourced(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk_sourced(value, f"{path}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):  # partitions and the like read better by name than index
            yield from _walk_sourced(value, f"{path}.{getattr(value, 'name', i)}")


class Link(Strict):
    kind: str
    bandwidth_gbs: Sourced
    direction: Literal["bidirectional", "per-direction"]


class Accelerator(Entry):
    vendor: Literal["nvidia", "amd", "google", "intel", "other"]
    peak_tflops: dict[Dtype, Sourced] = Field(description="DENSE peak per dtype, TFLOP/s (int8: TOPS)")
    sparse_factor: float | None = Field(None, description="datasheet sparse figure / dense figure, where vendors print sparse peaks")
    memory_gb: Sourced
    hbm_bandwidth_tbs: Sourced | None = None
    link: Link | None = None
    tdp_w: Sourced
    matmul_ceiling: Sourced | None = Field(None, description="measured max achievable matmul FLOP/s / dense bf16 peak")
    architecture: Slug | None = Field(None, description="GPU generation (ampere, hopper, ...): accelerators of one "
                                      "architecture share what training campaigns realise on them")
    schedulable_unit: str | None = Field(None, description="what Slurm calls one GPU when it is not the whole package")

    @field_validator("peak_tflops")
    @classmethod
    def _has_bf16(cls, v: dict) -> dict:
        if "bf16" not in v:
            raise ValueError("a dense bf16 peak is required (the default training dtype)")
        for dtype, q in v.items():
            if q.value <= 0:
                raise ValueError(f"{dtype}: peak must be positive")
        return v

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s (not TFLOP/s) for `dtype`; fp16 falls back to bf16 (same tensor rate)."""
        key = "bf16" if dtype == "fp16" and "fp16" not in self.peak_tflops else dtype
        if key not in self.peak_tflops:
            have = ", ".join(self.peak_tflops)
            raise PlannerError(f"accelerator '{self.name}' has no {dtype} peak in the catalog (it has: {have})")
        return self.peak_tflops[key].value * 1e12


class Partition(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    max_wall_hours: Sourced
    max_nodes: Sourced | None = None
    default: bool = False
    purpose: str | None = None


class Accounting(Strict):
    unit: Literal["node-h", "gpu-h", "core-h"]
    units_per_node_hour: Sourced
    note: str | None = None


class Cluster(Entry):
    site: str
    state: Literal["production", "retired", "planned", "cloud"] = "production"
    accelerator: Slug
    nodes: Sourced | None = Field(None, description="None for a cloud node type that is rented by the node")
    gpus_per_node: Sourced
    cpu: str
    cpu_cores_per_node: Sourced
    memory_per_node_gb: Sourced
    interconnect: str
    partitions: list[Partition] = Field(min_length=1)
    accounting: Accounting
    node_power_kw: Sourced
    pue: Sourced | None = Field(None, description="power usage effectiveness of the site, where published")
    grid_gco2_per_kwh: Sourced | None = Field(None, description="carbon intensity of the site's electricity")
    mfu_profile: Slug | None = None

    @model_validator(mode="after")
    def _one_default_partition(self) -> "Cluster":
        defaults = [p.name for p in self.partitions if p.default]
        if len(defaults) != 1:
            raise ValueError(f"exactly one partition must have `default: true` (found {len(defaults)})")
        return self

    @property
    def default_partition(self) -> Partition:
        return next(p for p in self.partitions if p.default)

    def partition(self, name: str | None) -> Partition:
        if name is None:
            return self.default_partition
        for p in self.partitions:
            if p.name == name:
                return p
        raise unknown_name(f"partition of {self.name}", name, [p.name for p in self.partitions])

    @property
    def gpus_per_node_int(self) -> int:
        return int(self.gpus_per_node.value)


class MfuPoint(Strict):
    params: float = Field(gt=0)
    gpus: int = Field(gt=0)
    mfu: float = Field(gt=0, lt=1)
    source: str
    status: Status | None = None
    note: str | None = None


class MfuProfile(Entry):
    accelerators: list[Slug] = Field(min_length=1, description="accelerators whose peak these MFUs are relative to")
    workload: Literal["dense-lm", "moe", "clip"]
    dtype: Dtype = "bf16"
    points: list[MfuPoint] = Field(min_length=1)
    assumed_for: list[Slug] = Field([], description="accelerators listed without a measurement on them (plans say so)")

    @model_validator(mode="after")
    def _point_sources_resolve(self) -> "MfuProfile":
        for i, p in enumerate(self.points):
            if p.source not in self.sources:
                raise ValueError(f"points.{i}: source '{p.source}' is not a key of `sources`")
        if stray := [a for a in self.assumed_for if a not in self.accelerators]:
            raise ValueError(f"assumed_for: '{stray[0]}' is not in accelerators")
        return self


# --- Catalog directories -------------------------------------------------------------------------


def builtin_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # planner/
    installed = package / "catalogs"  # inside the wheel
    return installed if installed.is_dir() else package.parent / "catalogs"  # source checkout


def search_path(extra: tuple[str, ...] | list[str] = ()) -> tuple[Path, ...]:
    """Built-in catalogs first, then $PLANNER_CATALOG_PATH, then --catalog options: later wins."""
    dirs = [builtin_dir()]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in extra]
    for d in dirs[1:]:
        if not d.is_dir():
            raise PlannerError(f"catalog directory '{d}' does not exist")
    return tuple(dirs)


class Catalog:
    """Name → file index over the search path; files are parsed only when asked for."""

    def __init__(self, dirs: tuple[Path, ...] | None = None):
        self.dirs = dirs if dirs is not None else search_path()
        self._files: dict[str, dict[str, Path]] = {}
        self._fingerprint: str | None = None
        self.derived: dict[str, Any] = {}  # values computed from the entries (the fitted throughput estimator)

    def fingerprint(self) -> str:
        """sha256 over every entry in effect (kind, name and file bytes, after overrides): equal
        fingerprints mean equal catalog numbers, wherever the catalogs are installed."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for kind in KINDS:
                for name, path in sorted(self.files(kind).items()):
                    digest.update(f"{kind}/{name}\0".encode())
                    digest.update(path.read_bytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def provenance(self) -> dict:
        """What a result was computed with, for the record: the planner version and the catalog data."""
        from planner import __version__

        return {"planner": __version__, "catalog_sha256": self.fingerprint()[:16], "user_catalog_dirs": len(self.dirs) - 1}

    def files(self, kind: str) -> dict[str, Path]:
        if kind not in self._files:
            found: dict[str, Path] = {}
            for d in self.dirs:
                sub = d / kind
                if sub.is_dir():
                    for f in sorted(sub.glob("*.yaml")):
                        found[f.stem] = f
            self._files[kind] = found
        return self._files[kind]

    def names(self, kind: str) -> list[str]:
        return sorted(self.files(kind))

    def get(self, kind: str, name: str):
        files = self.files(kind)
        if name not in files:
            raise unknown_name(KIND_LABEL[kind], name, files)
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

    def find(self, name: str) -> tuple[str, Any]:
        """Look a name up in every kind (for `catalog show NAME`)."""
        for kind in KINDS:
            if name in self.files(kind):
                return kind, self.get(kind, name)
        everything = [n for kind in KINDS for n in self.files(kind)]
        raise unknown_name("catalog entry", name, everything)


KIND_LABEL = {"accelerators": "accelerator", "clusters": "cluster", "mfu": "MFU profile", "laws": "law", "models": "model",
              "programs": "grant program", "campaigns": "campaign set"}


def model_for(kind: str) -> type[Entry]:
    # the schemas of laws, models, programs and campaigns import catalog types: import only the one needed
    if kind == "laws":
        from planner.laws import Law

        return Law
    if kind == "models":
        from planner.catalog.models import Model

        return Model
    if kind == "programs":
        from planner.grant.programs import Program

        return Program
    if kind == "campaigns":
        from planner.catalog.campaigns import CampaignSet

        return CampaignSet
    return {"accelerators": Accelerator, "clusters": Cluster, "mfu": MfuProfile}[kind]


@cache
def _load_cached(kind: str, path: Path, mtime: float):
    entry = load_model(model_for(kind), path)
    if entry.name != path.stem:
        raise PlannerError(f"{path}:1: name: '{entry.name}' must equal the file name '{path.stem}'")
    return entry


def load_entry(kind: str, path: Path):
    return _load_cached(kind, path, path.stat().st_mtime)
