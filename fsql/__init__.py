"""fsql: feature definitions in YAML, point-in-time correct SQL for your warehouse."""

from __future__ import annotations

__version__ = "0.1.0"

from fsql.api import Project, load_project
from fsql.errors import (
    CompileError,
    DefinitionError,
    ExecutionError,
    FsqlError,
    ProjectError,
    SelectionError,
)

__all__ = [
    "CompileError",
    "DefinitionError",
    "ExecutionError",
    "FsqlError",
    "Project",
    "ProjectError",
    "SelectionError",
    "__version__",
    "load_project",
]
