"""docker/: the compose stack, dagster.yaml, workspace.yaml, Dockerfile and .env.example agree.

Cheap: parses files, starts nothing (no Docker engine needed).
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from trading_assets.definitions import ASSETS
from trading_assets.environment import resources_from_environment

DOCKER = Path(__file__).resolve().parents[2] / "docker"
ROOT = DOCKER.parent
_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")
DAGSTER_SERVICES = ("code", "webserver", "daemon", "dagster-init")
# The containers that hold run state: runs execute in `code`, the others share its files.
RUN_STATE_SERVICES = ("code", "daemon", "webserver")
# What the pipeline reads that the compose file sets to the stack's own services and volume;
# docker/.env cannot move these, so .env.example only names them in a comment.
PINNED = {
    "DATABASE_URL", "MINIO_ENDPOINT", "MINIO_SECURE", "MLFLOW_TRACKING_URI", "TRADING_DATA_DIR",
}
# Compose defaults that differ from the code's on purpose: TWS / IB Gateway runs on the Docker
# host, and the stack has its own MinIO user (minio-init creates it).
DEFAULTS_FOR_DOCKER = {"IBKR_HOST": "host.docker.internal", "MINIO_ACCESS_KEY": "trading-signals"}
_SETTING_HELPERS = {"_text", "_number", "_flag", "_secret"}
_SECRET = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN")
_NO_DEFAULT = object()


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
    # As the container sees it: `KEY:` is an empty value, YAML's true is "true".
    return {
        k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in env.items()
    }


def _raw_compose() -> dict[str, Any]:
    """The compose file before interpolation: values still read ${VAR:-default}."""
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def settings_the_code_reads() -> dict[str, object]:
    """Variable name -> the code's literal default (or _NO_DEFAULT), from the source itself.

    Every string literal passed to environment.py's _text/_number/_flag/_secret or env.get,
    and every dg.EnvVar("...") in the packages (TRADING_START_DATE, say).
    """
    settings: dict[str, object] = {}
    env_py = ROOT / "trading_assets" / "environment.py"
    for node in ast.walk(ast.parse(env_py.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in _SETTING_HELPERS:
            default = node.args[1] if len(node.args) > 2 else None
            literal = isinstance(default, ast.Constant) and default.value is not None
            settings[first.value] = default.value if literal else _NO_DEFAULT  # type: ignore[union-attr]
        elif isinstance(func, ast.Attribute) and func.attr == "get" and first.value.isupper():
            settings.setdefault(first.value, _NO_DEFAULT)
    # `_set_numbers(env, field="NAME", ...)`: set only when given; the field keeps its default.
    for node in ast.walk(ast.parse(env_py.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_set_numbers":
            for keyword in node.keywords:
                if isinstance(keyword.value, ast.Constant):
                    settings.setdefault(keyword.value.value, _NO_DEFAULT)
    # `env.get("NAME", "").strip() or "default"`: the literal after `or` is the default.
    for node in ast.walk(ast.parse(env_py.read_text())):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            last = node.values[-1]
            names = [
                n.args[0].value
                for n in ast.walk(node.values[0])
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr == "get" and n.args and isinstance(n.args[0], ast.Constant)
            ]
            if len(names) == 1 and isinstance(last, ast.Constant) and last.value:
                settings[names[0]] = last.value
    for package in ("trading_assets", "resources", "io_managers"):
        for path in (ROOT / package).rglob("*.py"):
            for name in re.findall(r"EnvVar\(\s*[\"'](\w+)[\"']", path.read_text()):
                settings.setdefault(name, _NO_DEFAULT)
    return settings


def _same_default(code: object, value: str) -> bool:
    if isinstance(code, bool):
        truthy = ("true", "1", "yes", "on") if code else ("false", "0", "no", "off")
        return value.lower() in truthy
    if isinstance(code, int | float):
        try:
            return float(value) == float(code)
        except ValueError:
            return False
    return value == code


def _command_texts(service: dict[str, Any]) -> list[str]:
    """Everything a service runs as a process's arguments: command, entrypoint, healthcheck."""
    parts: list[Any] = [service.get("command"), service.get("entrypoint")]
    parts.append(service.get("healthcheck", {}).get("test"))
    texts = []
    for part in parts:
        if isinstance(part, list):
            texts.extend(str(p) for p in part)
        elif part is not None:
            texts.append(str(part))
    return texts


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
        "daemon", "browser",
    }


def test_the_browser_serves_the_code_servers_stores_behind_a_token(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    browser, code = services["browser"], services["code"]
    command = browser["command"]
    assert command[:2] == ["trading-signals", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    # The same stores and instance as the code server, and the token serve insists on.
    env = _environment(browser)
    assert {k: env[k] for k in _environment(code)} == _environment(code)
    assert env["ARTIFACT_BROWSER_TOKEN"] == _env_example()["ARTIFACT_BROWSER_TOKEN"]
    raw = _raw_compose()["services"]["browser"]["environment"]["ARTIFACT_BROWSER_TOKEN"]
    assert raw.startswith("${ARTIFACT_BROWSER_TOKEN:?"), "required, never defaulted"
    assert browser["volumes"] == code["volumes"]
    assert _published(browser) == {_port(command, "--port"): 8000}
    assert env["DAGSTER_UI_URL"] == f"http://127.0.0.1:{_published(services['webserver'])[3000]}"
    assert env["MLFLOW_UI_URL"] == f"http://127.0.0.1:{_published(services['mlflow'])[5000]}"
    assert "os.environ['ARTIFACT_BROWSER_TOKEN']" in browser["healthcheck"]["test"][-1]
    assert browser["depends_on"]["dagster-init"]["condition"] == "service_completed_successfully"


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
    # Everything that connects to the gateway with IBKR_CLIENT_ID queues in the broker pool.
    at_the_broker = {a.key.to_user_string() for a in ASSETS if a.op.pool == "broker"}
    assert at_the_broker == {"market_data", "order", "portfolio"}
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
    assert "mlflow:5000" in command  # allowed Host header for the other containers
    mlflow_env = _environment(mlflow)
    # The store's URI (with the password) is an environment variable, not an argument.
    assert mlflow_env["MLFLOW_BACKEND_STORE_URI"] == (
        f"postgresql+psycopg2://{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{pg_env['MLFLOW_DB']}"
    )
    assert "--backend-store-uri" not in command
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


def test_the_pipeline_gets_every_setting_the_code_reads(compose: dict[str, Any]) -> None:
    settings = settings_the_code_reads()
    # The parse still finds what it is meant to (a refactor of environment.py must not blind it).
    assert {"DATABASE_URL", "SPOOL_DIR", "MAX_NOTIONAL_PER_ORDER", "TRADING_KILL_SWITCH",
            "OPENAI_API_KEY", "ORDER_SIZING", "TRADING_START_DATE"} <= set(settings)
    raw = _raw_compose()["x-pipeline"]
    example = _env_example()
    example_text = (DOCKER / ".env.example").read_text()
    for name in ("code", "dagster-init"):
        missing = set(settings) - set(_environment(compose["services"][name]))
        assert not missing, f"service {name} does not get {sorted(missing)} (docker-compose.yml)"
    for name in sorted(settings):
        value = str(raw[name])
        if name in PINNED:
            assert f"${{{name}" not in value and name in example_text, name
            continue
        assert re.fullmatch(rf"\$\{{{name}(:[-?].*)?\}}", value), (
            f"x-pipeline sets {name}: {value!r}; forward it from docker/.env: "
            f"${{{name}:-default}}"
        )
        assert name in example, f"docker/.env.example lacks {name}"


def test_compose_and_env_example_defaults_are_the_codes() -> None:
    raw = _raw_compose()["x-pipeline"]
    example = _env_example()
    for name, code in settings_the_code_reads().items():
        if code is _NO_DEFAULT or name in PINNED:
            continue
        match = _VARIABLE.fullmatch(str(raw[name]))
        assert match, name
        if match.group(2) == "?":
            continue  # required by the stack (a password): no default to agree on
        compose_default = match.group(3) or ""
        found = (("docker-compose.yml", compose_default), (".env.example", example[name]))
        for where, value in found:
            expected = DEFAULTS_FOR_DOCKER.get(name)
            # Empty is the code's default too; anything else must say the same thing.
            ok = value == expected if expected else not value or _same_default(code, value)
            assert ok, f"{where}: {name}={value!r} but the code's default is {code!r}"


def test_run_state_lives_on_a_volume_shared_by_the_dagster_containers(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    resources = resources_from_environment(_environment(services["code"]))
    paper_db = resources["broker"].paper_state_url.removeprefix("sqlite:///")
    state = {
        "SPOOL_DIR": resources["spool"].directory,
        "the paper simulator's database": paper_db,
        "KILL_SWITCH_FILE": resources["policy"].kill_switch_file,
    }
    named = set(compose["volumes"])
    for service in RUN_STATE_SERVICES:
        mounts = {
            PurePosixPath(target): source
            for source, target, *_ in (str(m).split(":") for m in services[service]["volumes"])
            if source in named
        }
        for what, path in state.items():
            holders = [t for t in mounts if PurePosixPath(path).is_relative_to(t)]
            assert holders, f"{what} ({path}) is not on a named volume in service {service}"
            assert {mounts[t] for t in holders} == {"trading-data"}, (what, service)


def test_no_command_line_carries_a_secret(compose: dict[str, Any]) -> None:
    """Arguments show in `ps` and `docker inspect`: secrets go through the environment."""
    example = _env_example()
    secrets = {v for k, v in example.items() if _SECRET.search(k) and v}
    assert "POSTGRES_PASSWORD" in {k for k in example if _SECRET.search(k)}
    for name, service in _raw_compose()["services"].items():
        for text in _command_texts(service):
            for line in text.splitlines():
                variables = re.findall(r"\$\$?\{?(\w+)", line)
                if not any(_SECRET.search(v) for v in variables):
                    continue
                # Shell builtins: the value never becomes a process's argument.
                assert line.strip().startswith(("export ", "printf ")), (
                    f"service {name} passes a secret on a command line: {line.strip()}"
                )
    for name, service in compose["services"].items():
        for text in _command_texts(service):
            leaked = [s for s in secrets if s in text]
            assert not leaked, f"service {name}'s command line holds a secret value"


@pytest.mark.parametrize("path", [ROOT / "dagster.yaml", DOCKER / "dagster.yaml"])
def test_both_instances_keep_the_broker_pool_at_one(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dagster.yaml cannot name a pool: the default limit is what holds `broker` at 1 wherever
    # nobody ran `dagster instance concurrency set` (make ui, make run, a fresh stack).
    for name in set(re.findall(r"env: (\w+)", path.read_text())):
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    (tmp_path / "dagster.yaml").write_text(path.read_text())
    # Validated against the instance schema of the installed Dagster; nothing starts.
    config, _ = dagster_instance_config(str(tmp_path))
    pools = config["concurrency"]["pools"]
    assert pools["default_limit"] == 1 and pools["granularity"] == "op"
    # A run that died holding the broker's only slot must not shut the pool for good.
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
