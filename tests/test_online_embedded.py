"""`online: embedded`: fsql runs a private Postgres with its data under target/, started on first use.

The commands run in processes of their own, as a user runs them: each starts the server
(or finds it running), and the last one to exit stops it; the data stays in target/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from online_helpers import DEFINITIONS, t, write_rows

import fsql
from fsql.errors import ProjectError
from fsql.online import embedded

END = "2024-03-03T00:00:00Z"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "p"
    (root / "definitions").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "fsql_project.yml").write_text("name: t\n")
    (root / "profiles.yml").write_text(
        "t:\n  target: dev\n  outputs:\n    dev:\n      offline: 'duckdb:///:memory:'\n      online: embedded\n"
    )
    (root / "definitions" / "defs.yml").write_text(DEFINITIONS)
    write_rows(root, [(1, t(2), None, 0.5, "a"), (2, t(2), None, 0.25, "b")])
    yield root
    embedded.release(root / "target")  # what this test process started, if anything


def fsql_process(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`fsql ARGS` in a process of its own, importing this checkout's fsql."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", "from fsql.cli import main; main()", "--project-dir", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def server_running(root: Path) -> bool:
    pid_file = embedded.data_dir(root / "target") / "postmaster.pid"
    if not pid_file.is_file():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except ProcessLookupError:
        return False
    return True


def get(root: Path) -> list[dict[str, object]]:
    done = fsql_process(root, "get", "--features", "driver_stats", "--entity", "driver_id=1", "--now", END)
    assert done.returncode == 0, done.stderr
    values: list[dict[str, object]] = json.loads(done.stdout)
    return values


def test_the_target_names_no_url_and_commands_off_the_store_start_no_server(project: Path) -> None:
    target = fsql.load_project(project).config.target
    assert (target.online_url, target.online_embedded, target.has_online_store) == (None, True, True)
    assert fsql_process(project, "compile", "--features", "driver_stats").returncode == 0
    assert not (project / "target" / "postgres").exists()


def test_build_then_get_in_processes_of_their_own(project: Path) -> None:
    built = fsql_process(project, "build", "--end", END)
    assert built.returncode == 0, built.stderr
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert statuses == {"feature_view.driver_stats": "success"}
    assert (embedded.data_dir(project / "target") / "PG_VERSION").is_file()
    assert not server_running(project)  # the build's process stopped it as it exited
    assert get(project) == [{"driver_id": 1, "rate": 0.5, "label": "a"}]  # the data persisted in target/
    # A holder killed outright (kill -9) never let go: its pid, now no process's, must not keep the server up.
    gone = subprocess.Popen(["true"])
    gone.wait()
    (embedded.data_dir(project / "target") / ".handle_pids.json").write_text(json.dumps([gone.pid]))
    write_rows(project, [(1, t(2, 12), None, 0.75, "c")])
    assert fsql_process(project, "build", "--end", END).returncode == 0  # incremental: the state persisted too
    assert not server_running(project)
    assert get(project) == [{"driver_id": 1, "rate": 0.75, "label": "c"}]


def test_a_second_process_reuses_the_running_server_and_the_last_one_stops_it(project: Path) -> None:
    assert fsql_process(project, "build", "--end", END).returncode == 0
    holder = subprocess.Popen(  # a service holding a store open
        [sys.executable, "-c", "import fsql, sys; s = fsql.load_project(sys.argv[1]).online_store(); print('ready', "
         "flush=True); sys.stdin.readline(); s.close()", str(project)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        pid_file = embedded.data_dir(project / "target") / "postmaster.pid"
        server = pid_file.read_text().split()[0]
        assert get(project)[0]["rate"] == 0.5
        assert server_running(project) and pid_file.read_text().split()[0] == server  # reused, and left running
    finally:
        holder.communicate("\n", timeout=60)
    assert not server_running(project)


def test_a_server_that_cannot_start_is_an_error_naming_its_data_and_log(project: Path) -> None:
    pgdata = embedded.data_dir(project / "target")
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("18\n")  # a data directory whose configuration went missing
    with pytest.raises(ProjectError) as raised:
        fsql.load_project(project).online_store()
    message = str(raised.value)
    assert message.startswith(f"cannot start the embedded Postgres (online: embedded) with its data in {pgdata}: ")
    assert f"Its log, {pgdata / 'log'}, ends:" in message
    assert "postgresql.conf" in message
    assert f"or delete {pgdata.parent} to start afresh" in message
    failed = fsql_process(project, "build", "--end", END)
    assert failed.returncode == 2
    assert "cannot start the embedded Postgres" in failed.stderr
