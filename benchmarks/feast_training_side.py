"""Feast's side of benchmarks/scale.py's Feast case: `get_historical_features` on the file offline store.

Runs in Feast's own venv, never fsql's (it imports feast, not fsql):

    <feast venv>/bin/python benchmarks/feast_training_side.py apply --repo DIR --views-json FILE
    <feast venv>/bin/python benchmarks/feast_training_side.py fetch --repo DIR --views-json FILE \
        --spine SPINE.parquet --out RESULT.parquet

`apply` writes DIR/feature_store.yaml (offline store: Feast's `file` store, which is its Dask
store; registry: a local file; online store: the default SQLite, unused) and registers one
entity `entity` (join key entity_id), and one FeatureView per entry of the JSON file
(`[{"name": "view0", "path": ".../view0.parquet", "features": ["v0_f0", ...], "ttl_days": 365}, ...]`),
each over a FileSource with timestamp field event_ts, every feature Float64.
`fetch` times `FeatureStore(repo_path=DIR)` plus `get_historical_features(entity_df=<the spine
as pandas>, features=[every view:feature]).to_df()`, writes the result as parquet, and prints
one JSON line: seconds, CPU seconds, rows, and its peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

TTL_DAYS = 30


def write_config(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    config = {
        "project": "fsql_scale",
        "provider": "local",
        "registry": str(repo / "registry.db"),
        "online_store": {"type": "sqlite", "path": str(repo / "online.db")},
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }
    (repo / "feature_store.yaml").write_text(json.dumps(config, indent=2))  # JSON is YAML


def objects(views: list[dict[str, Any]]) -> list[Any]:
    from datetime import timedelta

    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    made: list[Any] = [entity]
    for view in views:
        source = FileSource(name=f"src_{view['name']}", path=view["path"], timestamp_field="event_ts")
        made += [
            source,
            FeatureView(
                name=view["name"],
                entities=[entity],
                ttl=timedelta(days=view.get("ttl_days", TTL_DAYS)),
                schema=[Field(name=name, dtype=Float64) for name in view["features"]],
                source=source,
                online=False,
            ),
        ]
    return made


def apply(repo: Path, views: list[dict[str, Any]]) -> None:
    from feast import FeatureStore

    write_config(repo)
    FeatureStore(repo_path=str(repo)).apply(objects(views))


def fetch(repo: Path, views: list[dict[str, Any]], spine: Path, out: Path) -> None:
    import pandas as pd
    from feast import FeatureStore

    entity_df = pd.read_parquet(spine)
    refs = [f"{view['name']}:{name}" for view in views for name in view["features"]]
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    store = FeatureStore(repo_path=str(repo))
    frame = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    frame.to_parquet(out)
    figures = {"seconds": seconds, "cpu_s": cpu, "rows": len(frame), "columns": len(frame.columns)}
    figures["peak_rss_mib"] = vm_hwm_mib()
    print(json.dumps(figures))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vm_hwm_mib() -> float:
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    return int(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["apply", "fetch"])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--views-json", type=Path, required=True)
    parser.add_argument("--spine", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    views = json.loads(args.views_json.read_text())
    if args.command == "apply":
        apply(args.repo, views)
    else:
        fetch(args.repo, views, args.spine, args.out)


if __name__ == "__main__":
    main()
