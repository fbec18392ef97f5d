"""docker/: the compose stack, dagster.yaml, workspace.yaml, Dockerfile and .env.example agree.

Cheap: parses files, starts nothing (no Docker engine needed).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from trading_assets.definitions import ASSETS

DOCKER = Path(__file__).resolve().parents[2] / "docker"
ROOT = DOCKER.parent
_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")
DAGSTER_SERVICES = ("code", "webserver", "daemon", "dagster-init")


def _env_example() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}; $$ is a literal $."""

    def replace(match: re.Match[str]) -> str:
        name, kind, arg = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise AssertionError(f"{name} is required by docker-compose.yml: {arg}")
        return arg or ""

    return _VARIABLE.sub(replace, text.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(_interpolate((DOCKER / "docker-compose.yml").read_text(), _env_example()))


@pytest.fixture(scope="module")
def dagster_yaml() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "dagster.yaml").read_text())


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping (anchors merge into it)"
    return {k: str(v) for k, v in env.items()}


def _port(command: list[str], flag: str = "-p") -> int:
    return int(command[command.index(flag) + 1])


def _published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port."""
    ports = {}
    for entry in service.get("ports", []):
        *host, container = str(entry).split(":")
        ports[int(container)] = int(host[-1])
    return ports


def test_every_variable_compose_reads_is_in_env_example() -> None:
    text = (DOCKER / "docker-compose.yml").read_text().replace("$$", "")
    used = {m.group(1) for m in _VARIABLE.finditer(text)}
    missing = used - set(_env_example())
    assert not missing, f"docker/.env.example lacks {sorted(missing)}"


def test_the_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres", "minio", "minio-init", "mlflow", "dagster-init", "code", "webserver",
        "daemon",
    }


def test_workspace_points_at_the_code_servers_grpc_port(compose: dict[str, Any]) -> None:
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    code = compose["services"][grpc["host"]]
    assert _port(code["command"]) == grpc["port"]
    assert str(grpc["port"]) in [str(p) for p in code["expose"]]
    assert code["command"][code["command"].index("--location-name") + 1] == grpc["location_name"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert grpc["location_name"] == pyproject["tool"]["dagster"]["code_location_name"]
    module = code["command"][code["command"].index("-m") + 1]
    assert module == pyproject["tool"]["dagster"]["module_name"]
    health = code["healthcheck"]["test"]
    assert _port(health) == grpc["port"]
    for name in ("webserver", "daemon"):
        command = compose["services"][name]["command"]
        assert command[command.index("-w") + 1] == "/opt/dagster/dagster_home/workspace.yaml"


def test_dagster_services_get_every_variable_dagster_yaml_reads(
    compose: dict[str, Any], dagster_yaml: dict[str, Any]
) -> None:
    text = (DOCKER / "dagster.yaml").read_text()
    needed = set(re.findall(r"env: (\w+)", text))
    assert needed >= {"DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_PASSWORD"}
    postgres = compose["services"]["postgres"]
    pg_env = _environment(postgres)
    for name in DAGSTER_SERVICES:
        env = _environment(compose["services"][name])
        missing = needed - set(env)
        assert not missing, f"service {name} lacks {sorted(missing)} that dagster.yaml reads"
        assert env["DAGSTER_POSTGRES_HOST"] == "postgres"
        assert env["DAGSTER_POSTGRES_PORT"] == "5432" and 5432 in _published(postgres)
        assert env["DAGSTER_POSTGRES_USER"] == pg_env["POSTGRES_USER"]
        assert env["DAGSTER_POSTGRES_PASSWORD"] == pg_env["POSTGRES_PASSWORD"]
        assert env["DAGSTER_POSTGRES_DB"] == pg_env["POSTGRES_DB"]
        if name != "dagster-init":
            assert compose["services"][name]["depends_on"]


def test_dagster_yaml_is_the_production_instance(dagster_yaml: dict[str, Any]) -> None:
    pg = dagster_yaml["storage"]["postgres"]["postgres_db"]
    assert pg["scheme"] == "postgresql+psycopg2"
    assert dagster_yaml["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert dagster_yaml["run_launcher"]["class"] == "DefaultRunLauncher"
    assert dagster_yaml["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert dagster_yaml["concurrency"]["pools"]["default_limit"] >= 1
    assert dagster_yaml["run_monitoring"]["enabled"] is True
    assert dagster_yaml["run_retries"]["enabled"] is True
    assert dagster_yaml["telemetry"]["enabled"] is False


def test_the_pools_set_at_start_are_the_pools_assets_use(compose: dict[str, Any]) -> None:
    script = compose["services"]["dagster-init"]["command"][-1]
    limits = dict(re.findall(r"dagster instance concurrency set (\w+) (\d+)", script))
    pools = {asset.op.pool for asset in ASSETS if asset.op.pool}
    assert pools == {"broker", "llm"} and set(limits) == pools
    assert limits["broker"] == "1"
    # Migrations first: the code location must never meet a schema that is behind.
    assert script.strip().splitlines()[0] == "trading-signals db upgrade"
    assert compose["services"]["code"]["depends_on"]["dagster-init"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_pipeline_reaches_postgres_minio_and_mlflow(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg_env = _environment(services["postgres"])
    env = _environment(services["code"])
    database = env["DATABASE_URL"]
    assert database.startswith(
        f"postgresql+psycopg2://{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}"
        "@postgres:5432/"
    )
    # The artifacts database is one the postgres init script creates.
    assert database.rsplit("/", 1)[1] == pg_env["ARTIFACTS_DB"]
    init = (DOCKER / "postgres" / "init-databases.sh").read_text()
    assert "$ARTIFACTS_DB" in init and "$MLFLOW_DB" in init
    mounts = services["postgres"]["volumes"]
    initdb = "./postgres/init-databases.sh:/docker-entrypoint-initdb.d/"
    assert any(m.startswith(initdb) for m in mounts)

    host, port = env["MINIO_ENDPOINT"].split(":")
    assert host == "minio" and int(port) in _published(services["minio"])
    assert env["MINIO_SECURE"] == "false"
    minio_init = _environment(services["minio-init"])
    for key in ("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_BUCKET"):
        assert minio_init[key] == env[key]
    assert env["MINIO_SECRET_KEY"] != _environment(services["minio"])["MINIO_ROOT_PASSWORD"]

    mlflow = services["mlflow"]
    command = " ".join(mlflow["command"])
    mlflow_port = int(re.search(r"--port=(\d+)", command).group(1))  # type: ignore[union-attr]
    assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{mlflow_port}"
    assert mlflow_port in _published(mlflow)
    assert f"@postgres:5432/{pg_env['MLFLOW_DB']}" in command
    assert "mlflow:5000" in command  # allowed Host header for the other containers
    mlflow_env = _environment(mlflow)
    assert mlflow_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert mlflow_env["MLFLOW_S3_ENDPOINT_URL"] == f"http://{env['MINIO_ENDPOINT']}"


def test_published_ports_are_local_only_and_distinct(compose: dict[str, Any]) -> None:
    seen: dict[int, str] = {}
    for name, service in compose["services"].items():
        for entry in service.get("ports", []):
            assert str(entry).startswith("127.0.0.1:"), f"{name} publishes {entry} beyond localhost"
        for host_port in _published(service).values():
            assert host_port not in seen, f"{name} and {seen[host_port]} both use {host_port}"
            seen[host_port] = name
    assert _published(compose["services"]["webserver"]) == {3000: 3000}


def test_the_dockerfile_installs_the_locked_environment_and_the_instance() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        assert f"COPY {package} ./{package}" in dockerfile, f"the image lacks {package}/"
    assert "COPY docker/dagster.yaml docker/workspace.yaml ${DAGSTER_HOME}/" in dockerfile
    make_uv = re.search(r"UV_VERSION := (\S+)", (ROOT / "Makefile").read_text())
    assert make_uv and f"ghcr.io/astral-sh/uv:{make_uv.group(1)}" in dockerfile
