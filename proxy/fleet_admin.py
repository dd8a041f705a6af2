"""The parent's admin listener under ``serve --workers N``: the whole, and each worker.

- ``/healthz``: 200 while the parent lives.
- ``/readyz``: 200 only when every worker is ready on the parent's current policy
  generation, nothing is draining and the upstream accepts a connection; 503 with the
  reason otherwise. The body lists each worker's pid, generation and readiness.
- ``/metrics``: the workers' request counters summed by prometheus-client's multiprocess
  collector. Each worker writes its counters to a memory-mapped file in a directory the
  parent owns, on every increment; the file outlives the worker, so a worker that dies is
  neither lost from the totals nor counted twice by its replacement (a new pid, a new
  file). Per-worker gauges (generation, readiness, in-flight, restarts) carry a
  ``worker`` label and come from asking each worker at scrape time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .admin import admin_application, metrics_response
from .control import ChannelClosed, Message

if TYPE_CHECKING:
    from .forward import Upstream
    from .supervisor import Supervisor, Worker

STATE_TIMEOUT = 1.0  # a worker that cannot say its state this fast counts as not ready


class FleetCollector(Collector):
    """The parent's own metrics; ``states`` is refreshed just before each scrape."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.states: list[Message] = []

    def collect(self) -> Iterator[Metric]:
        supervisor = self.supervisor
        reloads = CounterMetricFamily(
            "cors_edge_policy_reloads",
            "Policy reloads (SIGHUP or --watch) of the whole, by result: ok, unchanged, error.",
            labels=("result",),
        )
        for result, count in supervisor.reload_results.items():
            reloads.add_metric((result,), count)
        yield reloads
        generation = GaugeMetricFamily(
            "cors_edge_policy_generation",
            "Policy generation the parent has committed to every worker.",
        )
        generation.add_metric((), supervisor.current.number)
        yield generation
        ready = GaugeMetricFamily(
            "cors_edge_ready", "1 while /readyz may answer ready, 0 while draining."
        )
        ready.add_metric((), 0.0 if supervisor.draining else 1.0)
        yield ready
        yield from self._per_worker()

    def _per_worker(self) -> Iterator[Metric]:
        families = {
            "generation": GaugeMetricFamily(
                "cors_edge_worker_policy_generation",
                "Policy generation each worker serves.",
                labels=("worker",),
            ),
            "ready": GaugeMetricFamily(
                "cors_edge_worker_ready", "1 when the worker is serving.", labels=("worker",)
            ),
            "in_flight": GaugeMetricFamily(
                "cors_edge_in_flight_requests",
                "Requests being handled now, by worker.",
                labels=("worker",),
            ),
        }
        restarts = CounterMetricFamily(
            "cors_edge_worker_restarts",
            "Times the parent restarted a worker that died.",
            labels=("worker",),
        )
        for state in self.states:
            label = (str(state["worker"]),)
            families["generation"].add_metric(label, float(state["generation"]))
            families["ready"].add_metric(label, 1.0 if state["ready"] else 0.0)
            families["in_flight"].add_metric(label, float(state["in_flight"]))
            restarts.add_metric(label, float(state["restarts"]))
        yield from families.values()
        yield restarts


def make_fleet_admin_app(supervisor: Supervisor, upstream: Upstream) -> web.Application:
    registry = CollectorRegistry()
    # prometheus-client ships this constructor without type hints.
    MultiProcessCollector(registry, path=str(supervisor.metrics_dir))  # type: ignore[no-untyped-call]
    fleet = FleetCollector(supervisor)
    registry.register(fleet)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "workers": len(supervisor.workers)})

    async def readyz(request: web.Request) -> web.Response:
        states = await worker_states(supervisor)
        body: Message = {"generation": supervisor.current.number, "workers": states}
        reason = _not_ready_reason(supervisor, states)
        if reason is None and not await upstream.probe():
            reason = "upstream not accepting connections"
        if reason is not None:
            return web.json_response({"ready": False, "reason": reason, **body}, status=503)
        config = supervisor.current.config
        return web.json_response(
            {"ready": True, "sha256": config.sha256, "source": config.source, **body}
        )

    async def metrics(request: web.Request) -> web.Response:
        fleet.states = await worker_states(supervisor)
        return metrics_response(registry)

    return admin_application(healthz, readyz, metrics)


def _not_ready_reason(supervisor: Supervisor, states: list[Message]) -> str | None:
    if supervisor.draining:
        return "draining"
    waiting = [str(s["worker"]) for s in states if not s["ready"]]
    if waiting:
        return f"worker {', '.join(waiting)} not ready"
    behind = [str(s["worker"]) for s in states if s["generation"] != supervisor.current.number]
    if behind:
        return f"worker {', '.join(behind)} not on generation {supervisor.current.number}"
    return None


async def worker_states(supervisor: Supervisor) -> list[Message]:
    """Each worker's pid, restarts, readiness, generation and in-flight count, asked now."""

    async def one(worker: Worker) -> Message:
        base: Message = {
            "worker": worker.index,
            "pid": worker.process.pid if worker.process else None,
            "restarts": worker.restarts,
        }
        if worker.channel is None or not worker.ready:
            return {**base, "ready": False, "generation": worker.generation, "in_flight": 0}
        try:
            reply = await worker.channel.request({"op": "state"}, STATE_TIMEOUT)
        except (ChannelClosed, TimeoutError):
            return {**base, "ready": False, "generation": worker.generation, "in_flight": 0}
        return {
            **base,
            "ready": bool(reply.get("ready")),
            "generation": int(reply.get("generation", 0)),
            "in_flight": int(reply.get("in_flight", 0)),
        }

    return list(await asyncio.gather(*(one(w) for w in supervisor.workers)))
