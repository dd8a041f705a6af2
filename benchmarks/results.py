"""The data a benchmark run produces, independent of how it was measured or shown."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    """One measurement of one contender in one round (unset fields do not apply)."""

    loader: str = ""
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    cpu_us: float | None = None  # front process tree CPU per request
    upstream_cpu_us: float | None = None  # upstream process tree CPU per request
    peak_rss_mb: float | None = None  # front process tree VmHWM after the run
    mb_per_s: float | None = None  # bulk transfers
    rss_growth_mb: float | None = None  # bulk transfers: peak minus RSS before
    cpu_s_per_gb: float | None = None  # bulk transfers: front CPU seconds per GB moved
    upstream_cpu_s_per_gb: float | None = None  # bulk transfers: the upstream's


@dataclass
class Series:
    """Every round of one contender in one scenario."""

    scenario: str
    target: str
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

    def values(self, name: str) -> list[float]:
        found = (getattr(sample, name) for sample in self.samples)
        return [float(value) for value in found if value is not None]

    def median(self, name: str) -> float | None:
        values = self.values(name)
        return statistics.median(values) if values else None

    def spread(self, name: str) -> tuple[float, float] | None:
        values = self.values(name)
        return (min(values), max(values)) if values else None


@dataclass
class PolicyTiming:
    """Decision cost of the policy engine for one table size."""

    routes: int
    origins: int
    mixed_us: float
    worst_us: float
    load_s: float


@dataclass
class Check:
    """One performance target of the issue, as measured in this run."""

    name: str
    goal: str
    measured: str
    ratio: float | None
    passed: bool | None  # None: could not be measured


@dataclass
class RunResults:
    """Everything one run of the driver found."""

    settings: dict[str, str]
    series: list[Series] = field(default_factory=list)
    memory: dict[str, float] = field(default_factory=dict)
    policy: list[PolicyTiming] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def find(self, scenario: str, target: str) -> Series | None:
        return next((s for s in self.series if s.scenario == scenario and s.target == target), None)

    def median(self, scenario: str, target: str, name: str) -> float | None:
        series = self.find(scenario, target)
        return series.median(name) if series else None


def load(raw: dict[str, Any]) -> RunResults:
    """A :class:`RunResults` back from its ``dataclasses.asdict`` JSON form."""
    return RunResults(
        settings=raw["settings"],
        series=[
            Series(s["scenario"], s["target"], [Sample(**x) for x in s["samples"]], s["note"])
            for s in raw["series"]
        ],
        memory=raw["memory"],
        policy=[PolicyTiming(**p) for p in raw["policy"]],
        notes=raw["notes"],
    )
