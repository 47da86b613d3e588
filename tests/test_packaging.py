"""Text the package reads at run time (schemas, the scaffold) is package data, so it is in the wheel."""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

import fsql

PACKAGE = Path(fsql.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def test_every_data_file_is_matched_by_package_data() -> None:
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["fsql"]
    # setuptools expands the patterns with glob.glob: '*' does not match a dotfile.
    shipped = {name for pattern in patterns for name in glob.glob(pattern, root_dir=PACKAGE, recursive=True)}
    data = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and path.name != "README.md"
    } | {str(p.relative_to(PACKAGE)) for p in (PACKAGE / "scaffold" / "project").rglob("README.md")}
    assert {"schemas/definitions.schema.json", "scaffold/project/data/labels.csv", "scaffold/project/gitignore"} <= data
    assert not data - shipped, f"add to [tool.setuptools.package-data] in pyproject.toml: {sorted(data - shipped)}"
