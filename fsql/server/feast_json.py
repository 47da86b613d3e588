"""Feast's feature-server JSON, read and written: the request of POST /get-online-features and
the response, so a Feast client switches by changing a URL.

Request: `{"features": ["view:feature", ...]}` or `{"feature_service": "name"}`, with
`"entities": {"key": [v1, v2, ...], ...}` (columns, one value per entity row; the request fields
of derived features are more columns of it, as Feast's clients send request data) and an optional
`"full_feature_names": bool`. Response: `{"metadata": {"feature_names": [keys..., features...]},
"results": [{"values": [...], "statuses": [...], "event_timestamps": [...]}, ...]}`, one result
per column (the keys first, then the features), one entry per entity row, as Feast's server
writes its protobuf response with `MessageToDict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlglot import exp

from fsql.errors import CompileError
from fsql.online.result import FeatureStatus, LookupResult
from fsql.spec import Definitions

# Feast sends an empty protobuf Timestamp where there is no event time: the epoch.
NO_TIME = "1970-01-01T00:00:00Z"
_FIELDS = frozenset({"features", "feature_service", "entities", "full_feature_names"})
_ISO_KEYS = {
    exp.DType.DATE: date.fromisoformat,
    exp.DType.TIMESTAMP: datetime.fromisoformat,
    exp.DType.TIMESTAMPTZ: datetime.fromisoformat,
}


@dataclass(frozen=True)
class FeatureQuery:
    """What a request asks for, in the terms of `OnlineStore.lookup`."""

    entity_rows: list[dict[str, Any]]
    service: str | None
    features: list[str] | None
    full_feature_names: bool | None


def read_request(body: Any, definitions: Definitions, *, max_entities: int) -> FeatureQuery:
    """Check a parsed request body's shape and turn its entity columns into rows.

    Raises:
        CompileError: the body is not an object of Feast's shape; the message names the field.
        TooManyEntities: more entity rows than `max_entities`.
    """
    if not isinstance(body, dict):
        raise CompileError('the request body must be a JSON object, e.g. {"feature_service": "s", "entities": {...}}')
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        fields = ", ".join(sorted(_FIELDS))
        raise CompileError(f"unknown field(s) {', '.join(map(repr, unknown))} in the request; the fields are {fields}")
    service, features = body.get("feature_service"), body.get("features")
    if service is not None and not isinstance(service, str):
        raise CompileError("'feature_service' must be a string, the name of a feature service")
    if features is not None and not (isinstance(features, list) and all(isinstance(f, str) for f in features)):
        raise CompileError("'features' must be a list of strings, each 'view' or 'view:feature'")
    full = body.get("full_feature_names")
    if full is not None and not isinstance(full, bool):
        raise CompileError("'full_feature_names' must be true or false")
    rows = _entity_rows(body.get("entities"), _key_types(definitions), max_entities)
    return FeatureQuery(rows, service, features or None, full)


class TooManyEntities(CompileError):
    """More entity rows than the server takes in one request."""


def _entity_rows(entities: Any, key_types: Mapping[str, exp.DType | None], limit: int) -> list[dict[str, Any]]:
    if not isinstance(entities, dict) or not entities:
        raise CompileError("'entities' must be an object of key columns, e.g. {\"driver_id\": [1001, 1002]}")
    lengths = {}
    for key, column in entities.items():
        if not isinstance(column, list):
            raise CompileError(f"entities['{key}'] must be a list of values, one per entity row")
        lengths[key] = len(column)
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"'{k}' has {n}" for k, n in lengths.items())
        raise CompileError(f"the entity columns must have one value per entity row each, but {shown}")
    count = next(iter(lengths.values()))
    if count > limit:
        raise TooManyEntities(f"{count} entity rows in one request; this server takes at most {limit} (--max-entities)")
    columns = {key: [_key_value(key, v, key_types.get(key)) for v in column] for key, column in entities.items()}
    return [{key: column[i] for key, column in columns.items()} for i in range(count)]


def _key_value(key: str, value: Any, key_type: exp.DType | None) -> Any:
    """JSON has no dates: a date or timestamp key comes as an ISO 8601 string."""
    parse = _ISO_KEYS.get(key_type) if key_type else None
    if parse is None or key_type is None or not isinstance(value, str):
        return value
    try:
        parsed = parse(value)
    except ValueError:
        raise CompileError(f"key '{key}' is {key_type.value.lower()}: {value!r} is not an ISO 8601 value") from None
    if isinstance(parsed, datetime) and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # naive means UTC, as everywhere in fsql
    return parsed


def _key_types(definitions: Definitions) -> dict[str, exp.DType | None]:
    types: dict[str, exp.DType | None] = {}
    for entity in definitions.entities.values():
        for key in entity.join_keys:
            types.setdefault(key.name, key.type)
    # Request fields of derived features come as extra entity columns, as Feast's clients send them.
    for derived in definitions.derived_views.values():
        for field in derived.request:
            types.setdefault(field.name, field.type)
    return types


def write_response(result: LookupResult) -> dict[str, Any]:
    """Feast's response shape: one column per key and per feature."""
    keys = list(result.entities[0]) if result.entities else []
    rows = len(result.entities)
    present, no_times = [FeatureStatus.PRESENT.value] * rows, [NO_TIME] * rows
    results: list[dict[str, Any]] = [
        {"values": [entity[key] for entity in result.entities], "statuses": present, "event_timestamps": no_times}
        for key in keys
    ]
    column = {name: i for i, name in enumerate(result.feature_names)}
    for view in result.views:
        statuses = [status.value for status in view.statuses]
        # Rows often share an event time (a view built at once): each distinct one is written once.
        written: dict[datetime | None, str] = {None: NO_TIME}
        times = [written.get(m) or written.setdefault(m, feast_time(m)) for m in view.event_timestamps]  # type: ignore[arg-type]
        for name in view.features:
            values = [row[column[name]] for row in result.values]
            results.append({"values": values, "statuses": statuses, "event_timestamps": times})
    return {"metadata": {"feature_names": [*keys, *result.feature_names]}, "results": results}


def feast_time(moment: datetime) -> str:
    """A time as protobuf's JSON writes a Timestamp: UTC, 'Z', 0, 3 or 6 fractional digits.

    Example:
        >>> feast_time(datetime(2024, 3, 20, 11, 0, 0, 250000, tzinfo=UTC))
        '2024-03-20T11:00:00.250Z'
        >>> feast_time(datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC))  # four-digit years, as RFC 3339
        '0999-01-02T03:04:05.000006Z'
    """
    moment = moment.astimezone(UTC)
    text = moment.replace(tzinfo=None, microsecond=0).isoformat()  # strftime's %Y does not pad years < 1000
    micros = moment.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"
