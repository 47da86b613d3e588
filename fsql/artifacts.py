"""Artifacts under target/: compiled SQL and manifest.json, each with versioned metadata.

Changing the shape of an artifact is a schema bump of `FSQL_SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fsql.errors import scrub_secrets
from fsql.spec import Definitions, Feature

FSQL_SCHEMA_VERSION = "https://fsql.dev/schemas/manifest/v1.json"
INVOCATION_ID = str(uuid.uuid4())


def metadata() -> dict[str, str]:
    from fsql import __version__

    return {
        "fsql_schema_version": FSQL_SCHEMA_VERSION,
        "fsql_version": __version__,
        "generated_at": datetime.now(UTC).isoformat(),
        "invocation_id": INVOCATION_ID,
    }


def write_sql(target_dir: Path, kind: str, dialect: str, name: str, sql: str) -> Path:
    """Write `target/<kind>/<dialect>/<name>.sql` (kind: compiled or run) and return its path."""
    path = target_dir / kind / dialect / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scrub_secrets(sql), encoding="utf-8")
    return path


def write_manifest(target_dir: Path, project_name: str, definitions: Definitions) -> Path:
    """Write target/manifest.json: every definition with where it came from."""
    path = target_dir / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"metadata": metadata(), "project": project_name, **describe(definitions)}
    path.write_text(scrub_secrets(json.dumps(document, indent=2, default=str)) + "\n", encoding="utf-8")
    return path


def write_run_results(target_dir: Path, results: list[dict[str, Any]], elapsed: float) -> Path:
    """Write target/run_results.json: one entry per node with its status, rows and time."""
    path = target_dir / "run_results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"metadata": metadata(), "elapsed_time": round(elapsed, 4), "results": results}
    path.write_text(scrub_secrets(json.dumps(document, indent=2, default=str)) + "\n", encoding="utf-8")
    return path


def describe(definitions: Definitions) -> dict[str, Any]:
    """A JSON-ready description of every definition (the manifest and `fsql ls --output json`)."""

    def typename(type_: Any) -> str | None:
        return type_.value.lower() if type_ is not None else None

    return {
        "dialect": definitions.dialect,
        "entities": {
            e.name: {
                "join_keys": [{"name": k.name, "type": typename(k.type)} for k in e.join_keys],
                "description": e.description,
                "defined_at": str(e.where),
            }
            for e in definitions.entities.values()
        },
        "sources": {
            s.name: {
                "description": s.description,
                "kind": s.kind.value,
                "location": s.template or s.location,
                "template": s.template,
                "timestamp": s.timestamp,
                "created_timestamp": s.created_timestamp,
                "columns": {c.name: typename(c.type) for c in s.columns},
                "defined_at": str(s.where),
            }
            for s in definitions.sources.values()
        },
        "feature_views": {
            v.name: {
                "description": v.description,
                "entities": list(v.entities),
                "join_keys": [k.name for k in v.join_keys],
                "source": v.source,
                "ttl": str(v.ttl) if v.ttl else None,
                "online": v.online,
                "lateness": str(v.lateness) if v.lateness else None,
                "granularity": str(v.granularity) if v.granularity else None,
                "tags": list(v.tags),
                "owner": v.owner,
                "features": {f.name: _feature(f, typename) for f in v.features},
                "aggregations": {
                    a.name: {
                        "function": a.function.value,
                        "expr": a.expression,
                        "filter": a.filter,
                        "windows": [str(w) for w in a.windows],
                        "input_type": typename(a.input_type),
                        "description": a.description,
                    }
                    for a in v.aggregations
                },
                "defined_at": str(v.where),
            }
            for v in definitions.feature_views.values()
        },
        "derived_views": {
            d.name: {
                "description": d.description,
                "tags": list(d.tags),
                "owner": d.owner,
                "inputs": [i.ref for i in d.inputs],
                "request": {r.name: typename(r.type) for r in d.request},
                "features": {
                    f.name: {"type": typename(f.type), "expr": f.text, "description": f.description} for f in d.features
                },
                "defined_at": str(d.where),
            }
            for d in definitions.derived_views.values()
        },
        "feature_services": {
            s.name: {
                "features": [str(r) for r in s.features],
                "full_feature_names": s.full_feature_names,
                "description": s.description,
                "owner": s.owner,
                "tags": list(s.tags),
                "defined_at": str(s.where),
            }
            for s in definitions.feature_services.values()
        },
    }


def _feature(feature: Feature, typename: Callable[[Any], str | None]) -> dict[str, Any]:
    """A feature in the manifest; a window of an aggregation also names them."""
    described: dict[str, Any] = {
        "type": typename(feature.type),
        "expr": feature.expression,
        "description": feature.description,
    }
    if feature.aggregate is not None:
        described["aggregation"] = feature.aggregate.aggregation.name
        described["function"] = feature.aggregate.aggregation.function.value
        described["window"] = str(feature.aggregate.window)
    return described
