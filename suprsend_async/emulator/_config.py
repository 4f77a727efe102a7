"""What the emulator is started with: the credentials it accepts, its mode, the faults to inject."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["DEFAULT_WORKSPACE_KEY", "DEFAULT_WORKSPACE_SECRET", "EmulatorConfig", "Faults"]

DEFAULT_WORKSPACE_KEY = "emulator_workspace_key"
DEFAULT_WORKSPACE_SECRET = "emulator_workspace_secret"


@dataclass
class Faults:
    """Faults to inject, each at a rate between 0 and 1 (per request, or per record).

    * ``latency_ms`` (+ up to ``latency_jitter_ms``): added before answering;
    * ``rate_429``: answer 429 with ``Retry-After: retry_after`` without processing;
    * ``rate_5xx``: answer ``status_5xx`` without processing;
    * ``rate_record_5xx``: inside a 207, answer a record with 503 without processing it;
    * ``rate_drop``: process the request, then drop the connection without answering;
    * ``drop_next``: drop the next N trigger requests that way, whatever the rates say;
    * ``seed``: makes the sequence of injected faults repeatable.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_429: float = 0.0
    retry_after: float = 1.0
    rate_5xx: float = 0.0
    status_5xx: int = 503
    rate_record_5xx: float = 0.0
    rate_drop: float = 0.0
    drop_next: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_5xx", "rate_record_5xx", "rate_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.drop_next < 0:
            raise ValueError("drop_next must be >= 0")
        if self.latency_ms < 0 or self.latency_jitter_ms < 0 or self.retry_after < 0:
            raise ValueError("latency and retry_after must be >= 0")
        if not 500 <= self.status_5xx <= 599:
            raise ValueError("status_5xx must be a 5xx status")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Faults:
        """Faults from a JSON object; unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        return cls(**values)

    @property
    def any(self) -> bool:
        """Whether any fault or latency is switched on."""
        return bool(
            self.latency_ms
            or self.latency_jitter_ms
            or self.rate_429
            or self.rate_5xx
            or self.rate_record_5xx
            or self.rate_drop
            or self.drop_next
        )


@dataclass(frozen=True)
class EmulatorConfig:
    """Credentials the emulator accepts, and whether it runs in fast (benchmark) mode.

    ``fast`` checks signatures and counts records but neither validates nor stores them, so a
    benchmark measures the client rather than the emulator. ``record_id_field`` names a key of
    ``data`` whose value the emulator counts accepted triggers by (see ``accepted_by_record``),
    so a test can prove nothing was processed twice even without idempotency keys.
    ``allowed_hosts`` are names it answers to besides its own (``localhost``, ``127.0.0.1``,
    ``[::1]`` and the bound address, with its port): ``name`` with any port, ``name:port``,
    or ``*`` for any ``Host`` at all (see `._guard`).
    """

    workspace_key: str = DEFAULT_WORKSPACE_KEY
    workspace_secret: str = DEFAULT_WORKSPACE_SECRET
    api_key: str | None = None
    workspace_uid: str | None = None
    fast: bool = False
    record_id_field: str = "record_id"
    allowed_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"EmulatorConfig(workspace_key={self.workspace_key!r}, workspace_secret=<hidden>,"
            f" api_key={'<hidden>' if self.api_key else None},"
            f" workspace_uid={self.workspace_uid!r}, fast={self.fast},"
            f" allowed_hosts={self.allowed_hosts!r})"
        )
