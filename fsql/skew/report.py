"""What `fsql skew` found: per view the times compared, and every disagreement with both values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The pseudo-features of a latest-value view's row, beside its real features.
ROW = "(row)"
EVENT_TIME = "(event time)"


@dataclass(frozen=True)
class Disagreement:
    """One value serving and training disagree on.

    `feature` is an output name, or `(row)` when one side has the entity's row (within the
    ttl) and the other has none, or `(event time)` when both have a row but not the same one.
    """

    view: str
    feature: str
    entity: Mapping[str, Any]
    online: Any
    offline: Any
    online_status: str

    def as_json(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "feature": self.feature,
            "entity": {k: _plain(v) for k, v in self.entity.items()},
            "online": _plain(self.online),
            "offline": _plain(self.offline),
            "online_status": self.online_status,
        }


@dataclass(frozen=True)
class ViewSkew:
    """One view's comparison: when, over how many entities, and what disagreed.

    `kind` is `latest` or `aggregate`. `lookup_at` is the `now` of the online lookup,
    `offline_at` the spine time of the training query: equal for latest-value views (the
    lookup time clamped to the view's last build end), the lookup's as_of for aggregate views.
    `sampled` counts the entities drawn from this view's own online table, `from_training`
    those added from the entities training has (up to the sample size, the ones the online
    sample lacks); `compared` the distinct entities of the view (its keys)
    in the entity rows.
    """

    view: str
    kind: str
    lookup_at: datetime
    offline_at: datetime
    sampled: int
    compared: int
    disagreements: tuple[Disagreement, ...]
    from_training: int = 0

    @property
    def status(self) -> str:
        return "fail" if self.disagreements else "pass"

    def as_json(self, service: str, seconds: float) -> dict[str, Any]:
        """The view's entry in target/run_results.json."""
        return {
            "unique_id": f"skew.{service}.{self.view}",
            "status": self.status,
            "failures": len(self.disagreements),
            "message": f"{len(self.disagreements)} disagreement(s) over {self.compared} entities",
            "execution_time": round(seconds, 4),
            "skew": {
                "view": self.view,
                "kind": self.kind,
                "lookup_at": self.lookup_at.isoformat(),
                "offline_at": self.offline_at.isoformat(),
                "sampled": self.sampled,
                "from_training": self.from_training,
                "compared": self.compared,
                "disagreements": [d.as_json() for d in self.disagreements],
            },
        }


@dataclass(frozen=True)
class SkewReport:
    """The result of `Project.skew`: `ok` when serving and training agree on every value compared."""

    service: str
    at: datetime
    sample: int
    seed: int
    entities: tuple[Mapping[str, Any], ...]
    views: tuple[ViewSkew, ...]
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def disagreements(self) -> tuple[Disagreement, ...]:
        return tuple(d for view in self.views for d in view.disagreements)

    @property
    def ok(self) -> bool:
        return not self.disagreements

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "at": self.at.isoformat(),
            "sample": self.sample,
            "seed": self.seed,
            "entities": [{k: _plain(v) for k, v in e.items()} for e in self.entities],
            "views": [
                {
                    "view": v.view,
                    "kind": v.kind,
                    "lookup_at": v.lookup_at.isoformat(),
                    "offline_at": v.offline_at.isoformat(),
                    "sampled": v.sampled,
                    "from_training": v.from_training,
                    "compared": v.compared,
                    "disagreements": len(v.disagreements),
                }
                for v in self.views
            ],
            "disagreements": [d.as_json() for d in self.disagreements],
            "notes": list(self.notes),
            "ok": self.ok,
            "seconds": round(self.seconds, 4),
        }


def _plain(value: Any) -> Any:
    """JSON-ready: times in ISO 8601, NaN and infinities as strings (JSON has no such numbers)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
