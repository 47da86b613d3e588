"""What a training query is asked for: which features of which views, and under what names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fsql.definitions import parse_feature_ref
from fsql.errors import CompileError, did_you_mean
from fsql.spec import Definitions, Feature, FeatureRef, FeatureView, Source


@dataclass(frozen=True)
class OutputFeature:
    feature: Feature
    output_name: str


@dataclass(frozen=True)
class ViewRequest:
    """One feature view's part of a query: its source and the features taken from it."""

    view: FeatureView
    source: Source
    features: tuple[OutputFeature, ...]


@dataclass(frozen=True)
class FeatureRequest:
    """A named set of features, grouped by view in the order first asked for."""

    name: str
    views: tuple[ViewRequest, ...]

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(f.output_name for v in self.views for f in v.features)


def resolve_features(
    definitions: Definitions,
    *,
    service: str | None = None,
    features: Sequence[str] | None = None,
    full_feature_names: bool | None = None,
) -> FeatureRequest:
    """Resolve a feature service, or an explicit list of `view:feature`, into a request.

    Raises:
        CompileError: nothing or both asked for, an unknown name, or two features that
            would share an output name.
    """
    if (service is None) == (not features):
        raise CompileError("ask for exactly one of a feature service (--service) or a feature list (--features)")
    if service is not None:
        if service not in definitions.feature_services:
            raise CompileError(
                f"unknown feature service '{service}'.{did_you_mean(service, list(definitions.feature_services))} "
                f"Services: {', '.join(sorted(definitions.feature_services)) or 'none defined'}."
            )
        spec = definitions.feature_services[service]
        refs: Sequence[FeatureRef] = spec.features
        name = service
        full_names = spec.full_feature_names if full_feature_names is None else full_feature_names
    else:
        refs = [parse_feature_ref(text, definitions, on_error=CompileError) for text in features or ()]
        name = "features_" + "_".join(sorted({r.view for r in refs}))
        full_names = bool(full_feature_names)
    return FeatureRequest(name, _group_by_view(definitions, refs, full_names))


def _group_by_view(definitions: Definitions, refs: Sequence[FeatureRef], full_names: bool) -> tuple[ViewRequest, ...]:
    chosen: dict[str, list[Feature]] = {}
    for ref in refs:
        view = definitions.feature_views[ref.view]
        wanted = view.features if ref.feature is None else (view.feature(ref.feature),)
        bucket = chosen.setdefault(view.name, [])
        bucket.extend(f for f in wanted if f is not None and f not in bucket)
    owners: dict[str, str] = {}
    views = []
    for view_name, view_features in chosen.items():
        view = definitions.feature_views[view_name]
        outputs = []
        for feature in view_features:
            output = f"{view_name}__{feature.name}" if full_names else feature.name
            if output in owners:
                raise CompileError(
                    f"feature '{feature.name}' is in both feature views '{owners[output]}' and '{view_name}': "
                    f"set full_feature_names: true on the service (or pass --full-feature-names) to name "
                    f"them view__feature, or ask for only one"
                )
            owners[output] = view_name
            outputs.append(OutputFeature(feature, output))
        views.append(ViewRequest(view, definitions.sources[view.source], tuple(outputs)))
    return tuple(views)
