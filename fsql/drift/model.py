"""Drift thresholds as the definitions declare them, and the defaults common monitoring uses.

A `drift:` mapping may sit on a feature view (for all its features) and on a feature (for
that feature, key by key over the view's). The model knows no dialect and no connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from fsql.yamlfile import Where

# Population stability index bands (the common rule of thumb): below 0.1 stable, 0.1 to
# 0.25 a moderate shift, above 0.25 a significant one.
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
NULL_RATE = 0.05  # a current null rate above 5 % is an issue
BINS = 10  # numeric PSI: bins cut at the reference's deciles
# A bin (or category) empty on one side has its share taken as EPSILON, so ln() stays finite.
EPSILON = 1e-4
_NOWHERE = Where(Path("<memory>"))


@dataclass(frozen=True)
class DriftSettings:
    """Partial settings as written (None: not said here, inherit)."""

    psi_moderate: float | None = None
    psi_significant: float | None = None
    null_rate: float | None = None
    ks: float | None = None  # a KS statistic above it is significant; None: KS is reported, not judged
    bins: int | None = None
    enabled: bool | None = None  # false: the feature is left out of `fsql drift`
    where: Where = field(default=_NOWHERE, compare=False)

    def over(self, base: DriftSettings) -> DriftSettings:
        """These settings, each unset one taken from `base`."""
        taken = {f.name: getattr(base, f.name) for f in fields(self) if f.name != "where"}
        return replace(self, **{k: v if getattr(self, k) is None else getattr(self, k) for k, v in taken.items()})


DEFAULTS = DriftSettings(
    psi_moderate=PSI_MODERATE, psi_significant=PSI_SIGNIFICANT, null_rate=NULL_RATE, ks=None, bins=BINS, enabled=True
)


@dataclass(frozen=True)
class Thresholds:
    """The settings one feature is judged by, every value resolved."""

    psi_moderate: float
    psi_significant: float
    null_rate: float
    ks: float | None
    bins: int
    enabled: bool

    @classmethod
    def resolve(cls, feature: DriftSettings | None, view: DriftSettings | None) -> Thresholds:
        settings = (feature or DriftSettings()).over((view or DriftSettings()).over(DEFAULTS))
        assert settings.psi_moderate is not None and settings.psi_significant is not None
        assert settings.null_rate is not None and settings.bins is not None and settings.enabled is not None
        return cls(
            settings.psi_moderate, settings.psi_significant, settings.null_rate, settings.ks, settings.bins,
            settings.enabled,
        )  # fmt: skip
