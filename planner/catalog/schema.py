"""The catalog's nouns: accelerators, clusters and MFU profiles, and the base every entry shares.

Every number in a catalog is a `Sourced` value: the number plus the key of a citation in the
entry's own `sources` map, with a status (verified / secondary / unverified / derived).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner.errors import PlannerError, unknown_name

Status = Literal["verified", "secondary", "unverified", "derived"]
Dtype = Literal["fp64", "fp64_tensor", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
# every command, spec and proposal offers these, in this order: the peaks an accelerator entry can state
DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "tf32", "fp32", "fp64", "fp64_tensor", "int8")
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)]


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

    @property
    def reference(self) -> str:
        """What a reader is shown: the citation, and its URL where the citation does not already carry it."""
        return self.citation if not self.url or self.url in self.citation else f"{self.citation} <{self.url}>"


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
    def _sources_resolve(self) -> Entry:
        for path, item in _walk_sourced(self):
            if item.source not in self.sources:
                raise ValueError(f"{path}: source '{item.source}' is not a key of `sources` ({', '.join(self.sources)})")
        return self

    def status_of(self, item: Sourced) -> Status:
        return item.status or self.sources[item.source].status

    def cite(self, item: Sourced) -> str:
        return self.sources[item.source].reference

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

    def dense_peak(self, dtype: str) -> Sourced:
        """The catalog's dense peak for `dtype` (TFLOP/s, with its source); fp16 falls back to bf16 (same tensor rate)."""
        key = "bf16" if dtype == "fp16" and "fp16" not in self.peak_tflops else dtype
        if key not in self.peak_tflops:
            have = ", ".join(self.peak_tflops)
            raise PlannerError(f"accelerator '{self.name}' has no {dtype} peak in the catalog (it has: {have})", "dtype")
        return self.peak_tflops[key]

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s (not TFLOP/s) for `dtype`; fp16 falls back to bf16 (same tensor rate)."""
        return self.dense_peak(dtype).value * 1e12


class Partition(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    max_wall_hours: Sourced
    max_nodes: Sourced | None = None
    default: bool = False
    purpose: str | None = None


class Price(Sourced):
    """A price per GPU-hour: the number with its source, the ISO 4217 currency, and the date the source
    stated it (prices change: a plan names the date)."""

    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD, EUR")
    as_of: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$", description="YYYY-MM or YYYY-MM-DD the source gave the price")


class Accounting(Strict):
    unit: Literal["node-h", "gpu-h", "core-h"]
    units_per_node_hour: Sourced
    price_per_gpu_hour: Price | None = Field(None, description="what one GPU-hour costs, where the resource is rented "
                                             "(required for `state: cloud`)")
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
    slurm_cluster_name: str | None = Field(None, description="ClusterName in the system's slurm.conf (scontrol show "
                                           "config): `planner sweep` takes live Slurm limits only from that cluster")

    # (low, high, whole): what a real cluster can have; a value outside is a typo that would divide by
    # zero or print negative hours downstream
    RANGES: ClassVar[dict[str, tuple[float, float, bool]]] = {
        "nodes": (1, 1e6, True), "gpus_per_node": (1, 64, True), "cpu_cores_per_node": (1, 4096, True),
        "memory_per_node_gb": (1, 1e5, False), "node_power_kw": (0.01, 100, False), "pue": (1, 5, False),
        "grid_gco2_per_kwh": (0, 5000, False), "accounting.units_per_node_hour": (1e-6, 1e5, False),
        "accounting.price_per_gpu_hour": (1e-6, 1e4, False),
        "max_wall_hours": (0.01, 8784, False), "max_nodes": (1, 1e6, True)}

    @model_validator(mode="after")
    def _physical_ranges(self) -> Cluster:
        checks: list[tuple[str, str, Sourced | None]] = [
            (name, name, getattr(self, name)) for name in ("nodes", "gpus_per_node", "cpu_cores_per_node", "memory_per_node_gb",
                                                           "node_power_kw", "pue", "grid_gco2_per_kwh")]
        checks.append(("accounting.units_per_node_hour", "accounting.units_per_node_hour", self.accounting.units_per_node_hour))
        checks.append(("accounting.price_per_gpu_hour", "accounting.price_per_gpu_hour", self.accounting.price_per_gpu_hour))
        for i, part in enumerate(self.partitions):
            checks += [(f"partitions.{i}.max_wall_hours", "max_wall_hours", part.max_wall_hours),
                       (f"partitions.{i}.max_nodes", "max_nodes", part.max_nodes)]
        for path, kind, item in checks:
            if item is None:
                continue
            low, high, whole = self.RANGES[kind]
            value = item.value
            if not (math.isfinite(value) and low <= value <= high) or (whole and value != int(value)):
                what = "a whole number" if whole else "a number"
                raise ValueError(f"{path}: must be {what} from {low:g} to {high:g}, got {value:g}")
        if self.nodes is not None:
            for i, part in enumerate(self.partitions):
                if part.max_nodes is not None and part.max_nodes.value > self.nodes.value:
                    raise ValueError(f"partitions.{i}.max_nodes: {part.max_nodes.value:g} exceeds the cluster's "
                                     f"{self.nodes.value:g} nodes")
        return self

    @model_validator(mode="after")
    def _cloud_has_a_price(self) -> Cluster:
        if self.state == "cloud" and self.accounting.price_per_gpu_hour is None:
            raise ValueError("accounting.price_per_gpu_hour: required for a rented cluster (state: cloud): the price "
                             "per GPU-hour with currency, as_of date and source")
        return self

    @model_validator(mode="after")
    def _one_default_partition(self) -> Cluster:
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
        raise unknown_name(f"partition of {self.name}", name, [p.name for p in self.partitions], "partition")

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
    def _point_sources_resolve(self) -> MfuProfile:
        for i, p in enumerate(self.points):
            if p.source not in self.sources:
                raise ValueError(f"points.{i}: source '{p.source}' is not a key of `sources`")
        if stray := [a for a in self.assumed_for if a not in self.accelerators]:
            raise ValueError(f"assumed_for: '{stray[0]}' is not in accelerators")
        return self
