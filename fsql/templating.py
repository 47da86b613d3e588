"""Jinja rendering for project files and SQL templates.

Project and profile files may use `{{ env_var('X', 'default') }}`; SQL templates under
templates/ may also use `{{ var('x') }}`, `{{ source('name') }}` and the macros defined in
templates/macros/*.sql, as in dbt. Rendering never guesses: an undefined name is an error,
reported at the line of the template (or of the YAML value) that uses it.

Templates render in Jinja's immutable sandbox with fsql's functions and a few harmless
Jinja globals only: a template cannot reach Python internals (`__globals__`, `__class__`,
...) or change the values it is given, so a project's templates can run nothing but Jinja.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from fsql.errors import DefinitionError, FsqlError, ProjectError, did_you_mean, register_secret
from fsql.yamlfile import Where

_MISSING = object()
_STRING_TEMPLATE = "<template>"  # the file name Jinja gives templates made from strings
# StrictUndefined's message for an unknown name (attribute errors read differently).
_UNDEFINED_NAME = re.compile(r"^'(\w+)' is undefined$")
# Jinja's default globals that fsql keeps, as dbt users write them; lipsum and cycler go.
_JINJA_GLOBALS = ("range", "dict", "joiner", "namespace")
_SANDBOX_HINT = (
    "templates may use var(), source(), env_var(), the macros under templates/macros, and Jinja's own tags and filters"
)


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
                f"var('{name}') is not defined.{did_you_mean(name, list(variables))} Add it under 'vars:' in "
                f"fsql_project.yml, pass --vars '{{{name}: ...}}', or give a default: var('{name}', ...)"
            )
        return default

    return var


class ForbiddenAccess(SecurityError):
    """A template reached for a Python internal, or for a method that changes a value."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, whose refusals say what the template tried to reach."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        owner = "an undefined name" if isinstance(obj, jinja2.Undefined) else f"a {type(obj).__name__} value"
        return self.undefined(
            f"the template tried to reach '{attribute}' of {owner}, which is not allowed in fsql templates",
            name=attribute,
            obj=obj,
            exc=ForbiddenAccess,
        )


class TemplateRenderer:
    """Renders strings and files with one Jinja environment (templates dir + macros).

    Errors are `DefinitionError`s at the template's line: in the YAML file for a string
    (given its start), in the template or macro file otherwise, shown relative to `root`.
    """

    def __init__(
        self,
        *,
        templates_dir: Path | None = None,
        root: Path | None = None,
        globals_: Mapping[str, Any] | None = None,
    ) -> None:
        loader = jinja2.FileSystemLoader(str(templates_dir)) if templates_dir and templates_dir.is_dir() else None
        self.root = root
        self.env = _Sandbox(
            loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
        )
        kept = {name: self.env.globals[name] for name in _JINJA_GLOBALS}  # the sandbox's own range: bounded
        self.env.globals.clear()
        self.env.globals.update(kept, env_var=env_var)
        self.env.globals.update(globals_ or {})
        if templates_dir is not None and (templates_dir / "macros").is_dir():
            self._load_macros(templates_dir / "macros", templates_dir)

    def _load_macros(self, macros_dir: Path, templates_dir: Path) -> None:
        for path in sorted(macros_dir.glob("*.sql")):
            name = path.relative_to(templates_dir).as_posix()
            try:
                module = self.env.get_template(name).module
            except Exception as exc:  # a macro file runs user code: report it at its line
                raise self._error(exc, "", Where(self._shown(str(path)), 1)) from None
            for key, value in vars(module).items():
                if isinstance(value, jinja2.runtime.Macro):
                    self.env.globals[key] = value

    def render_string(self, text: str, *, where: Where, what: str = "") -> str:
        """Render `text`, which starts at `where`; `what` (e.g. "source 'x'") prefixes any error."""
        if "{" not in text:
            return text
        try:
            return self.env.from_string(text).render()
        except Exception as exc:  # templates run user code: report any failure at its line
            raise self._error(exc, what, where) from None

    def render_file(self, name: str, *, what: str = "", where: Where | None = None) -> str:
        """Render a template under the templates dir by its relative name; `where` refers to it."""
        try:
            return self.env.get_template(name).render()
        except Exception as exc:  # templates run user code: report any failure at its line
            raise self._error(exc, what, where) from None

    def _error(self, exc: Exception, what: str, origin: Where | None) -> DefinitionError:
        if isinstance(exc, DefinitionError):
            return exc  # from a nested template (a source() call), already placed
        prefix = f"{what}: " if what else ""
        return self._where(exc, origin).error(f"{prefix}{self._describe(exc)}")

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, FsqlError):
            return str(exc)
        if isinstance(exc, jinja2.TemplateSyntaxError):
            return f"template syntax error: {exc.message}"
        if isinstance(exc, jinja2.TemplateNotFound):
            return f"template '{exc.name}' not found in the templates directory"
        if isinstance(exc, ForbiddenAccess):
            return f"{exc}: {_SANDBOX_HINT}"
        if isinstance(exc, SecurityError):
            return f"the template tried something not allowed in fsql templates ({exc}): {_SANDBOX_HINT}"
        if isinstance(exc, jinja2.UndefinedError):
            match = _UNDEFINED_NAME.match(str(exc))
            hint = did_you_mean(match.group(1), list(self.env.globals)) if match else ""
            return f"{exc}.{hint} Use var('name') for project variables, or define a macro under templates/macros/"
        return f"the template failed: {type(exc).__name__}: {exc}"

    def _where(self, exc: Exception, origin: Where | None) -> Where:
        """The innermost template line that raised `exc`: in a template file, or in the YAML text at `origin`.

        `origin` is where a string template starts, or where a file template is named; it is
        also the answer when no template line is known.
        """
        frames: list[tuple[str, int | None]]
        if isinstance(exc, jinja2.TemplateSyntaxError) and exc.lineno:
            frames = [(exc.filename or _STRING_TEMPLATE, exc.lineno)]
        else:
            frames = [(f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)]
        for filename, line in reversed(frames):
            if filename == _STRING_TEMPLATE and origin is not None:
                return origin.at(line)
            if self._is_template_file(filename):
                return Where(self._shown(filename), line)
        return origin or Where(Path(_STRING_TEMPLATE))

    def _is_template_file(self, filename: str) -> bool:
        loader = self.env.loader
        if not isinstance(loader, jinja2.FileSystemLoader):
            return False
        return any(filename.startswith(os.path.join(str(base), "")) for base in loader.searchpath)

    def _shown(self, filename: str) -> Path:
        path = Path(filename)
        return path.relative_to(self.root) if self.root and path.is_relative_to(self.root) else path
