"""Jinja rendering for project files and SQL templates.

Project and profile files may use `{{ env_var('X', 'default') }}`; SQL templates under
templates/ may also use `{{ var('x') }}`, `{{ source('name') }}` and the macros defined in
templates/macros/*.sql, as in dbt. Rendering never guesses: an undefined name is an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from fsql.errors import ProjectError, register_secret

_MISSING = object()


def env_var(name: str, default: Any = _MISSING) -> str:
    """The value of an environment variable; its absence is an error unless a default is given."""
    if name in os.environ:
        value = os.environ[name]
        if name.startswith("FSQL_ENV_SECRET_"):
            register_secret(value)
        return value
    if default is _MISSING:
        raise ProjectError(
            f"environment variable '{name}' is not set and env_var('{name}') has no default: "
            f"export {name}=... or write env_var('{name}', 'default')"
        )
    return str(default)


def make_var(variables: Mapping[str, Any]) -> Callable[..., Any]:
    def var(name: str, default: Any = _MISSING) -> Any:
        if name in variables:
            return variables[name]
        if default is _MISSING:
            raise ProjectError(
                f"var('{name}') is not defined: add it under 'vars:' in fsql_project.yml, "
                f"pass --vars '{{{name}: ...}}', or give a default: var('{name}', ...)"
            )
        return default

    return var


class TemplateRenderer:
    """Renders strings and files with one Jinja environment (templates dir + macros)."""

    def __init__(self, *, templates_dir: Path | None = None, globals_: Mapping[str, Any] | None = None) -> None:
        loader = jinja2.FileSystemLoader(str(templates_dir)) if templates_dir and templates_dir.is_dir() else None
        self.env = jinja2.Environment(
            loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
        )
        self.env.globals["env_var"] = env_var
        self.env.globals.update(globals_ or {})
        if templates_dir is not None and (templates_dir / "macros").is_dir():
            self._load_macros(templates_dir / "macros", templates_dir)

    def _load_macros(self, macros_dir: Path, templates_dir: Path) -> None:
        for path in sorted(macros_dir.glob("*.sql")):
            name = path.relative_to(templates_dir).as_posix()
            try:
                module = self.env.get_template(name).module
            except jinja2.TemplateError as exc:
                raise self._error(exc, name) from None
            for key, value in vars(module).items():
                if isinstance(value, jinja2.runtime.Macro):
                    self.env.globals[key] = value

    def render_string(self, text: str, *, where: str) -> str:
        """Render `text`; `where` (file:line) prefixes any error."""
        if "{" not in text:
            return text
        try:
            return self.env.from_string(text).render()
        except ProjectError as exc:
            raise ProjectError(f"{where}: {exc}") from None
        except jinja2.TemplateError as exc:
            raise ProjectError(f"{where}: could not render template: {exc}") from None

    def render_file(self, name: str) -> str:
        """Render a template under the templates dir by its relative name."""
        try:
            return self.env.get_template(name).render()
        except jinja2.TemplateNotFound:
            raise ProjectError(f"template '{name}' not found in the templates directory") from None
        except ProjectError as exc:
            raise ProjectError(f"templates/{name}: {exc}") from None
        except jinja2.TemplateError as exc:
            raise self._error(exc, name) from None

    @staticmethod
    def _error(exc: jinja2.TemplateError, name: str) -> ProjectError:
        line = getattr(exc, "lineno", None)
        where = f"templates/{name}" + (f":{line}" if line else "")
        return ProjectError(f"{where}: could not render template: {exc}")
