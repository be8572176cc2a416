"""Prometheus metrics of the line: what came in, what was decided, how fast, what is waiting."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2, 5)


class LineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "castline_messages_total", "Messages received, by kind", ["kind"], registry=r
        )
        self.dead_letters = Counter(
            "castline_dead_letters_total", "Invalid messages dead-lettered", registry=r
        )
        self.verdicts = Counter(
            "castline_verdicts_total", "Verdicts published, by kind", ["verdict"], registry=r
        )
        self.latency = Histogram(
            "castline_verdict_latency_seconds",
            "Image arrival to verdict published",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.backlog = Gauge(
            "castline_backlog_messages",
            "Messages waiting in the line's JetStream consumer",
            registry=r,
        )
        self.store_up = Gauge(
            "castline_store_up", "1 while the database answers, 0 while it is away", registry=r
        )
        self.store_up.set(1)
        self.unjoined = Counter(
            "castline_unjoined_total",
            "Shots without image and images without shot in the window",
            ["what"],
            registry=r,
        )
        self.errors = Counter(
            "castline_processing_errors_total",
            "Messages whose processing raised (redelivered)",
            registry=r,
        )
