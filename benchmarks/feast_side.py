"""Feast's side of benchmarks/serve.py: a Feast feature repo holding the same rows as fsql's.

Runs in Feast's own venv, never fsql's (it imports feast, not fsql):

    <feast venv>/bin/python benchmarks/feast_side.py --repo DIR --data DIR --host H --port P \
        --database DB --user U [--password PW] --schema S

writes DIR/feature_store.yaml (online store: Feast's Postgres store in schema S of DB, a pool
of 8 connections as fsql's server has; registry: a local file; offline store: file),
DIR/definitions.py (the entities driver and rider, the feature views driver_stats with a
7-day ttl and rider_stats, the feature service `both`, over the parquet files in --data that
serve.py wrote for fsql), applies them and loads every row with
`FeatureStore.write_to_online_store`. serve.py then starts `feast serve` on the repo.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DEFINITIONS = """
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
rider = Entity(name="rider", join_keys=["rider_id"], value_type=ValueType.INT64)
drivers = FileSource(name="drivers", path={drivers!r}, timestamp_field="event_ts")
riders = FileSource(name="riders", path={riders!r}, timestamp_field="event_ts")
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(days=7),
    schema=[Field(name="driver_id", dtype=Int64), Field(name="rate", dtype=Float64), Field(name="label", dtype=String)],
    source=drivers,
    online=True,
)
rider_stats = FeatureView(
    name="rider_stats",
    entities=[rider],
    ttl=timedelta(0),  # Feast's "no ttl", as fsql's rider_stats has none
    schema=[Field(name="rider_id", dtype=Int64), Field(name="trips", dtype=Int64)],
    source=riders,
    online=True,
)
both = FeatureService(name="both", features=[driver_stats, rider_stats])
"""


def write_repo(args: argparse.Namespace) -> Path:
    repo = Path(args.repo)
    repo.mkdir(parents=True, exist_ok=True)
    online = {
        "type": "postgres",
        "host": args.host,
        "port": args.port,
        "database": args.database,
        "db_schema": args.schema,
        "user": args.user,
        "password": args.password,
        "sslmode": "disable",
        "conn_type": "pool",
        "min_conn": 1,
        "max_conn": 8,
    }
    config = {
        "project": "fsql_bench",
        "provider": "local",
        "registry": str(repo / "registry.db"),
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }
    # JSON is YAML: no yaml writer needed.
    (repo / "feature_store.yaml").write_text(json.dumps(config, indent=2))
    data = Path(args.data).resolve()
    text = DEFINITIONS.format(drivers=str(data / "drivers.parquet"), riders=str(data / "riders.parquet"))
    (repo / "definitions.py").write_text(text)
    return repo


def load(repo: Path, data: Path) -> None:
    import importlib.util

    import pandas as pd
    from feast import FeatureStore

    spec = importlib.util.spec_from_file_location("definitions", repo / "definitions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    store = FeatureStore(repo_path=str(repo))
    store.apply(
        [
            module.driver,
            module.rider,
            module.drivers,
            module.riders,
            module.driver_stats,
            module.rider_stats,
            module.both,
        ]
    )
    for view, file in (("driver_stats", "drivers.parquet"), ("rider_stats", "riders.parquet")):
        frame = pd.read_parquet(data / file)
        frame["event_ts"] = pd.to_datetime(frame["event_ts"]).dt.tz_localize("UTC")  # fsql reads naive as UTC
        started = time.perf_counter()
        store.write_to_online_store(view, frame)
        print(f"feast: {len(frame):,} rows into {view} in {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", default="")
    parser.add_argument("--schema", required=True)
    args = parser.parse_args()
    load(write_repo(args), Path(args.data).resolve())


if __name__ == "__main__":
    main()
