"""Where an MQTT broker is: parsed once from an mqtt://[user:pass@]host[:port] URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ValueError(f"broker URL must look like mqtt://host:1883, got {url!r}")
        return cls(parsed.hostname, parsed.port or 1883, parsed.username, parsed.password)
