"""deploy/: the Kubernetes manifests parse, every command they and the Dockerfile name exists in
the `fsql` CLI with those options, and the container's entry command runs here, against the test
Postgres and the example project, until /health answers ready. (No docker on this machine: the
image itself is not built here.)"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from conftest import REPO, copy_example_project
from online_helpers import online_url

from fsql.cli.main import app

DEPLOY = REPO / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def dockerfile() -> dict[str, Any]:
    """ENTRYPOINT, CMD (exec form), ENV and EXPOSE of deploy/Dockerfile."""
    found: dict[str, Any] = {"ENV": {}}
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word in ("ENTRYPOINT", "CMD"):
            found[word] = json.loads(rest)  # the exec form: no shell between Kubernetes and fsql
        elif word == "ENV":
            found["ENV"].update(part.split("=", 1) for part in shlex.split(rest))
        elif word == "EXPOSE":
            found["EXPOSE"] = int(rest)
    return found


def containers(kind: str) -> list[dict[str, Any]]:
    docs = [d for d in documents() if d["kind"] == kind]
    assert docs, f"no {kind} in deploy/kubernetes"
    spec = docs[0]["spec"]
    pod = spec["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else spec["template"]["spec"]
    return list(pod["containers"])


def check_cli(args: list[str]) -> typer.Context:
    """Parse `fsql <args>` as the CLI would, without running it: an unknown command or option raises."""
    group = typer.main.get_command(app)
    parent = typer.Context(group, info_name="fsql")
    name, *rest = args  # the project options go after the command as well (`fsql build -t prod`)
    command = group.get_command(parent, name)  # type: ignore[attr-defined]
    assert command is not None, f"`fsql {name}` is no fsql command"
    return command.make_context(name, rest, parent=parent)


def test_the_manifests_parse_and_hold_each_piece() -> None:
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == ["ConfigMap", "CronJob", "Deployment", "Secret", "Service"]
    for doc in documents():
        assert doc["apiVersion"] and doc["metadata"]["name"]


def test_every_command_they_name_exists_with_those_options() -> None:
    image = dockerfile()
    assert image["ENTRYPOINT"] == ["fsql"]
    assert check_cli(image["CMD"]).params["host"] == "0.0.0.0"  # a container listens beyond its loopback
    serve = containers("Deployment")[0]
    assert "command" not in serve  # the image's ENTRYPOINT: fsql
    assert check_cli(serve["args"]).info_name == "serve"
    build = containers("CronJob")[0]
    assert check_cli(build["args"]).info_name == "build"
    with pytest.raises(Exception, match="No such option: --no-such-option"):  # the check can fail
        check_cli(["serve", "--no-such-option"])
    with pytest.raises(AssertionError):
        check_cli(["bild"])


def test_serve_help_names_every_route() -> None:
    from typer.testing import CliRunner

    shown = " ".join(CliRunner().invoke(app, ["serve", "--help"]).output.split())  # unwrapped
    for route in ("POST /get-online-features", "POST /push", "GET /health", "GET /metrics"):
        assert route in shown


def test_probes_ports_and_secrets_line_up() -> None:
    image = dockerfile()
    serve = containers("Deployment")[0]
    port = serve["ports"][0]
    assert port["containerPort"] == image["EXPOSE"] == int(image["ENV"]["FSQL_SERVE_PORT"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert serve[probe]["httpGet"] == {"path": "/health", "port": port["name"]}
    service = next(d for d in documents() if d["kind"] == "Service")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    secret = next(d for d in documents() if d["kind"] == "Secret")
    config = next(d for d in documents() if d["kind"] == "ConfigMap")
    profiles = config["data"]["profiles.yml"]
    assert profiles == (DEPLOY / "profiles" / "profiles.yml").read_text().split("\n", 2)[2]
    # Every variable the pods set is one fsql reads: a CLI option's envvar or an env_var() of the profiles.
    group = typer.main.get_command(app)
    context = typer.Context(group)
    read = {p.envvar for c in group.commands.values() for p in c.get_params(context) if p.envvar}  # type: ignore[attr-defined]
    for container in (serve, containers("CronJob")[0]):
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert image["ENV"]["FSQL_PROFILES_DIR"] in mounts
        for variable in container["env"]:
            assert variable["name"] in read or f"env_var('{variable['name']}'" in profiles, variable["name"]
            key = variable["valueFrom"]["secretKeyRef"]
            assert (key["name"], key["key"] in secret["stringData"]) == (secret["metadata"]["name"], True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_containers_entry_command_serves_the_example_project_until_health_is_ready(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    project = copy_example_project(tmp_path / "project")
    profiles = tmp_path / "etc-fsql"
    profiles.mkdir()
    config = next(d for d in documents() if d["kind"] == "ConfigMap")
    (profiles / "profiles.yml").write_text(config["data"]["profiles.yml"])  # as the ConfigMap mounts it
    image = dockerfile()
    port = free_port()
    env = {
        **os.environ,
        **image["ENV"],
        # where this machine has them, instead of /project, /etc/fsql and 6566:
        "FSQL_PROJECT_DIR": str(project),
        "FSQL_PROFILES_DIR": str(profiles),
        "FSQL_SERVE_PORT": str(port),
        "FSQL_ONLINE_URL": online_url(postgres_dsn),
        "FSQL_ONLINE_SCHEMA": postgres_schema,
        "FSQL_SERVE_TOKEN": "tok",
    }
    entry = [str(Path(sys.executable).with_name(image["ENTRYPOINT"][0])), *image["ENTRYPOINT"][1:]]
    server = subprocess.Popen([*entry, *image["CMD"]], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        while True:  # until it answers (or dies: then say why)
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health")
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            break
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        body = {"feature_service": "driver_quality", "entities": {"driver_id": [1001]}}
        assert httpx.post(f"http://127.0.0.1:{port}/get-online-features", json=body).status_code == 401
    finally:
        server.terminate()
        server.wait()
