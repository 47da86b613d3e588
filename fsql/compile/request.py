"""What a training query is asked for: which features of which views, and under what names."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from fsql.definitions import parse_feature_ref
from fsql.derived import DerivedFeature, DerivedView, RequestField
from fsql.errors import CompileError, did_you_mean
from fsql.spec import Definitions, Feature, FeatureRef, FeatureView, Source

HIDDEN_PREFIX = "_fsql_in_"  # an input of a derived feature that was not asked for itself, numbered


@dataclass(frozen=True)
class OutputFeature:
    feature: Feature
    output_name: str
    # Read only as an input of derived features, and dropped from the output.
    hidden: bool = False


@dataclass(frozen=True)
class DerivedOutput:
    feature: DerivedFeature
    output_name: str


@dataclass(frozen=True)
class DerivedRequest:
    """One derived view's part of a query: its features, and where each of its inputs is read."""

    view: DerivedView
    features: tuple[DerivedOutput, ...]
    # `view:feature` -> the output name the input is read under in the same query.
    inputs: tuple[tuple[str, str], ...]

    @cached_property  # read by every online lookup of a plan
    def request_fields(self) -> tuple[RequestField, ...]:
        return self.view.request_of([f.feature for f in self.features])


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
    derived: tuple[DerivedRequest, ...] = ()

    @property
    def output_names(self) -> tuple[str, ...]:
        """What a caller gets: the views' features asked for, then the derived features."""
        plain = tuple(f.output_name for v in self.views for f in v.features if not f.hidden)
        return plain + tuple(f.output_name for d in self.derived for f in d.features)

    @cached_property  # read by every online lookup of a plan
    def request_fields(self) -> tuple[RequestField, ...]:
        """The request fields the derived features read, each once (a type conflict is refused when resolved)."""
        fields: dict[str, RequestField] = {}
        for derived in self.derived:
            for request_field in derived.request_fields:
                fields.setdefault(request_field.name, request_field)
        return tuple(fields.values())


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
    plain = [r for r in refs if r.view in definitions.feature_views]
    derived = _derived_features(definitions, [r for r in refs if r.view in definitions.derived_views])
    views = _group_by_view(definitions, plain, full_names, derived)
    return FeatureRequest(name, views, _derived_requests(definitions, derived, views, full_names))


def _derived_features(definitions: Definitions, refs: Sequence[FeatureRef]) -> dict[str, list[DerivedFeature]]:
    """The derived features asked for, by derived view; one type per request field across them."""
    chosen: dict[str, list[DerivedFeature]] = {}
    for ref in refs:
        view = definitions.derived_views[ref.view]
        wanted = view.features if ref.feature is None else (view.feature(ref.feature),)
        bucket = chosen.setdefault(view.name, [])
        bucket.extend(f for f in wanted if f is not None and f not in bucket)
    fields: dict[str, tuple[str, RequestField]] = {}
    for name, features in chosen.items():
        for request_field in definitions.derived_views[name].request_of(features):
            first = fields.setdefault(request_field.name, (name, request_field))
            if first[1].type != request_field.type:
                raise CompileError(
                    f"request field '{request_field.name}' is {first[1].type.value.lower()} in derived view "
                    f"'{first[0]}' but {request_field.type.value.lower()} in '{name}': declare it with one type"
                )
    return chosen


def _derived_requests(
    definitions: Definitions,
    chosen: dict[str, list[DerivedFeature]],
    views: tuple[ViewRequest, ...],
    full_names: bool,
) -> tuple[DerivedRequest, ...]:
    read_as = {f"{v.view.name}:{f.feature.name}": f.output_name for v in views for f in v.features}
    requests = []
    for name, features in chosen.items():
        view = definitions.derived_views[name]
        outputs = tuple(DerivedOutput(f, f"{name}__{f.name}" if full_names else f.name) for f in features)
        inputs = tuple((i.ref, read_as[i.ref]) for i in view.inputs_of(features))
        requests.append(DerivedRequest(view, outputs, inputs))
    return tuple(requests)


def _group_by_view(
    definitions: Definitions,
    refs: Sequence[FeatureRef],
    full_names: bool,
    derived: dict[str, list[DerivedFeature]],
) -> tuple[ViewRequest, ...]:
    chosen: dict[str, list[Feature]] = {}
    for ref in refs:
        view = definitions.feature_views[ref.view]
        wanted = view.features if ref.feature is None else (view.feature(ref.feature),)
        bucket = chosen.setdefault(view.name, [])
        bucket.extend(f for f in wanted if f is not None and f not in bucket)
    hidden: set[tuple[str, str]] = set()
    for name, features in derived.items():
        for read in definitions.derived_views[name].inputs_of(features):
            bucket = chosen.setdefault(read.view, [])
            feature = definitions.feature_views[read.view].feature(read.feature)
            if feature is not None and feature not in bucket:
                bucket.append(feature)
                hidden.add((read.view, read.feature))
    owners: dict[str, str] = {}
    views = []
    numbers = itertools.count()
    for view_name, view_features in chosen.items():
        view = definitions.feature_views[view_name]
        outputs = []
        for feature in view_features:
            if (view_name, feature.name) in hidden:
                outputs.append(OutputFeature(feature, f"{HIDDEN_PREFIX}{next(numbers)}", hidden=True))
                continue
            output = f"{view_name}__{feature.name}" if full_names else feature.name
            if output in owners:
                raise CompileError(
                    f"feature '{feature.name}' is in both {owners[output]} and feature view '{view_name}': "
                    f"set full_feature_names: true on the service (or pass --full-feature-names) to name "
                    f"them view__feature, or ask for only one"
                )
            owners[output] = f"feature view '{view_name}'"
            outputs.append(OutputFeature(feature, output))
        views.append(ViewRequest(view, definitions.sources[view.source], tuple(outputs)))
    for derived_name, derived_features in derived.items():
        for derived_feature in derived_features:
            output = f"{derived_name}__{derived_feature.name}" if full_names else derived_feature.name
            if output in owners:
                raise CompileError(
                    f"feature '{derived_feature.name}' is in both {owners[output]} and derived view '{derived_name}': "
                    f"set full_feature_names: true on the service (or pass --full-feature-names) to name "
                    f"them view__feature, or ask for only one"
                )
            owners[output] = f"derived view '{derived_name}'"
    return tuple(views)
