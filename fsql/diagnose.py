"""`fsql debug`: check, one line each, what a project needs before anything runs.

The checks, in order: the project file, the profile and its target, the offline engine
(it connects and runs `SELECT 1`) and the online store (reachable, when the target has
one). A check that cannot start because an earlier one failed says so. Messages hold no
password: URLs are shown masked, and every text passes `scrub_secrets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from fsql.engines import open_engine
from fsql.engines.postgres import probe
from fsql.errors import FsqlError, scrub_secrets
from fsql.project import PROJECT_FILE, ProjectConfig, find_project_root, load_project_config


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | fail | skipped (an earlier check failed) | absent (not configured)
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def run_checks(
    project_dir: str | Path = ".",
    *,
    target: str | None = None,
    profiles_dir: str | Path | None = None,
    vars: dict[str, Any] | None = None,
) -> list[Check]:
    """Check the project file, the profile, the offline engine and the online store."""
    try:
        root = find_project_root(Path(project_dir))
    except FsqlError as exc:
        return [_failed("project file", exc), *_skipped(("profile", "offline engine", "online store"))]
    try:
        config = load_project_config(root, target=target, profiles_dir=profiles_dir, vars=vars)
    except FsqlError as exc:
        if str(exc).startswith(PROJECT_FILE):  # a mistake in the project file, not in the profiles
            return [_failed("project file", exc), *_skipped(("profile", "offline engine", "online store"))]
        found = Check("project file", "ok", str(root / PROJECT_FILE))
        return [found, _failed("profile", exc), *_skipped(("offline engine", "online store"))]
    return [_project(config), _profile(config), _offline(config), _online(config)]


def _project(config: ProjectConfig) -> Check:
    return Check("project file", "ok", f"{config.root / PROJECT_FILE} (project '{config.name}')")


def _profile(config: ProjectConfig) -> Check:
    target = config.target
    where = config.profiles_path or "no profiles.yml found: the default in-memory DuckDB"
    others = f"; targets: {', '.join(config.targets)}" if len(config.targets) > 1 else ""
    return Check("profile", "ok", f"target '{target.name}' ({target.dialect}) from {where}{others}")


def _offline(config: ProjectConfig) -> Check:
    url = _masked(config.target.offline_url)
    try:
        engine = open_engine(config.target, config.root)
        try:
            engine.query_arrow("SELECT 1")
        finally:
            engine.close()
    except FsqlError as exc:
        return _failed("offline engine", exc)
    except Exception as exc:  # a driver's own error: connection refused, missing credentials, ...
        return Check("offline engine", "fail", scrub_secrets(f"{url}: {type(exc).__name__}: {exc}"))
    return Check("offline engine", "ok", f"{config.target.dialect}: connected to {url} and ran SELECT 1")


def _online(config: ProjectConfig) -> Check:
    from fsql.online.embedded import online_url

    target = config.target
    if not target.has_online_store:
        return Check(
            "online store",
            "absent",
            f"not configured: add `online: postgresql+psycopg://user@host:5432/db` to target '{target.name}' "
            f"in profiles.yml to materialize views and serve lookups",
        )
    try:
        url = online_url(config)
        assert url is not None
        probe(url, what=f"the online store of target '{target.name}'")
    except FsqlError as exc:
        return _failed("online store", exc)
    where = "embedded Postgres under target/postgres" if target.online_embedded else f"Postgres at {_masked(url)}"
    return Check("online store", "ok", f"{where}, schema {target.online_schema}")


def _failed(name: str, exc: Exception) -> Check:
    return Check(name, "fail", scrub_secrets(str(exc)))


def _skipped(names: tuple[str, ...]) -> list[Check]:
    return [Check(name, "skipped", "not checked: fix the line above first") for name in names]


def _masked(url: str) -> str:
    """The URL as written, its password (if any) masked."""
    parsed = make_url(url)  # parsed once already, when the profile was read
    return scrub_secrets(parsed.render_as_string(hide_password=True) if parsed.password else url)
