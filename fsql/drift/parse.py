"""Read a `drift:` mapping (on a feature view or a feature) into `DriftSettings`, with file:line errors."""

from __future__ import annotations

from typing import Any

from fsql.yamlfile import Mapping

from .model import DriftSettings

# The keys a `drift:` mapping accepts; fsql/schemas/definitions.schema.json lists the same ones.
DRIFT_KEYS = ("psi_moderate", "psi_significant", "null_rate", "ks", "bins", "enabled")
_EXAMPLE = "{psi_moderate: 0.1, psi_significant: 0.25, null_rate: 0.05}"


def drift_settings(owner: Mapping) -> DriftSettings | None:
    """The `drift:` settings under `owner`, or None when it has none."""
    if not owner.has("drift"):
        return None
    m = Mapping(
        owner.data["drift"], path=owner.path, what=f"{owner.what} drift", where=owner.where_value("drift"),
        lines=owner.lines, example=_EXAMPLE,
    )  # fmt: skip
    m.check_keys(DRIFT_KEYS)
    values: dict[str, Any] = {
        key: _fraction(m, key, upper=None if key.startswith("psi") else 1.0)
        for key in ("psi_moderate", "psi_significant", "null_rate", "ks")
    }
    if m.has("bins"):
        bins = m.required("bins", int)
        if not 2 <= bins <= 100:
            raise m.error("bins", f"'bins' must be between 2 and 100, not {bins}")
        values["bins"] = bins
    if m.has("enabled"):
        values["enabled"] = m.required("enabled", bool)
    settings = DriftSettings(**values, where=m.where())
    low, high = settings.psi_moderate, settings.psi_significant
    if low is not None and high is not None and low > high:
        raise m.error("psi_moderate", f"psi_moderate ({low}) is greater than psi_significant ({high})")
    return settings


def _fraction(m: Mapping, key: str, *, upper: float | None) -> float | None:
    if not m.has(key):
        return None
    value = m.data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise m.error(key, f"'{key}' must be a number, e.g. {_EXAMPLE}, not {value!r}")
    if value < 0 or (upper is not None and value > upper):
        bound = f"between 0 and {upper:g}" if upper is not None else "0 or more"
        raise m.error(key, f"'{key}' must be {bound}, not {value}")
    return float(value)
