"""`fsql init`: a new project that validates and trains at once.

The project's files are package data under `project/` beside this module, copied with
`__project_name__` replaced by the new project's name; `gitignore` becomes `.gitignore`
(a dotfile would be missed by the package-data globs). The JSON Schemas go to
`.fsql/schemas/`, which the first line of each YAML file names for editors.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from fsql.errors import ProjectError
from fsql.schemas import write_schemas
from fsql.yamlfile import NAME_PATTERN

DEFAULT_NAME = "my_features"
SERVICE = "churn_prediction"  # the scaffold's feature service, and its sample spine:
SPINE = "data/labels.csv"
SCHEMAS_DIR = Path(".fsql") / "schemas"
_PLACEHOLDER = "__project_name__"
_RENAMED = {"gitignore": ".gitignore"}


def create_project(parent: Path, name: str) -> Path:
    """Write a new project into `parent / name`, which must not exist or be empty.

    Returns:
        The project's directory.

    Raises:
        ProjectError: the name is not a valid project name, or the directory holds files.
    """
    if not NAME_PATTERN.match(name):
        fixed = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or DEFAULT_NAME
        raise ProjectError(
            f"'{name}' is not a valid project name: use lowercase letters, digits and underscores, "
            f"starting with a letter or underscore, e.g. 'fsql init {fixed}'"
        )
    directory = parent / name
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ProjectError(
            f"{directory} already exists and is not an empty directory: fsql init writes a new project, "
            f"and never over files; pick another name, or remove it"
        )
    _copy(files(__name__).joinpath("project"), directory, name)
    write_schemas(directory / SCHEMAS_DIR)
    return directory


def _copy(source: Traversable, destination: Path, name: str) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        target = destination / _RENAMED.get(entry.name, entry.name)
        if entry.is_dir():
            _copy(entry, target, name)
        else:
            target.write_text(entry.read_text(encoding="utf-8").replace(_PLACEHOLDER, name), encoding="utf-8")
