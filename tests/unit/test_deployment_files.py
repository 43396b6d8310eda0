"""The deployment files (Dockerfile, docker-compose.yaml, .env.example, deploy/) through the real compose
parser, and what they promise: the services of Airflow's official compose file, a worker per pipeline
queue, every address from a variable (so an env file can point each one elsewhere), no secret with a
value, every variable documented, the image on the pinned Airflow, the metrics named as documented.

``docker-compose`` is Debian's (``apt-get install docker-compose``; .ci/run installs it). Without it
these tests skip on a workstation and fail in CI (``CI=true``), where its absence is a broken setup.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from autopo_pipelines.config import load_configs

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DEPLOY = REPO_ROOT / "deploy"
PROFILES = ("local", "monitoring", "flower", "debug")

# The services of Airflow's official docker-compose.yaml for 3.x
# (apache/airflow: airflow-core/docs/howto/docker-compose/docker-compose.yaml). Its one
# `airflow-worker` is a worker service per pipeline queue here.
OFFICIAL_SERVICES = (
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
    "airflow-cli",
    "flower",
)
WORKER_PREFIX = "airflow-worker-"
PROFILED = {
    "gcs-emulator": "local",
    "statsd-exporter": "monitoring",
    "prometheus": "monitoring",
    "flower": "flower",
    "airflow-cli": "debug",
}

# The contract: the variable each address comes from, the setting it fills in every Airflow service,
# and its default (the service's name on the compose network).
CONTRACT: dict[str, tuple[str, str]] = {
    "AIRFLOW_DATABASE_URL": (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "postgresql+psycopg2://airflow:airflow@postgres:5432/airflow",
    ),
    "AIRFLOW_CELERY_BROKER_URL": ("AIRFLOW__CELERY__BROKER_URL", "redis://redis:6379/0"),
    "AIRFLOW_CELERY_RESULT_BACKEND": (
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "db+postgresql://airflow:airflow@postgres:5432/airflow",
    ),
    "AIRFLOW_EXECUTION_API_URL": (
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "http://airflow-apiserver:8080/execution/",
    ),
    "AIRFLOW_CONN_AUTOPO_DB": ("AIRFLOW_CONN_AUTOPO_DB", "postgresql://autopo:autopo@postgres:5432/autopo"),
    "AUTOPO_DATA_DIR": ("AUTOPO_DATA_DIR", "gs://autopo-data/autopo"),
    "AUTOPO_DATA_CONN_ID": ("AUTOPO_DATA_CONN_ID", "google_cloud_default"),
    "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": ("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", ""),
    "STATSD_HOST": ("AIRFLOW__METRICS__STATSD_HOST", "statsd-exporter"),
    "STATSD_PORT": ("AIRFLOW__METRICS__STATSD_PORT", "9125"),
}
# Everything on loopback, as a native run of the same file on one machine sets it.
LOOPBACK: dict[str, str] = {
    "AIRFLOW_DATABASE_URL": "postgresql+psycopg2://airflow:pw@127.0.0.1:15432/airflow_meta",
    "AIRFLOW_CELERY_BROKER_URL": "redis://127.0.0.1:16379/3",
    "AIRFLOW_CELERY_RESULT_BACKEND": "db+postgresql://airflow:pw@127.0.0.1:15432/airflow_meta",
    "AIRFLOW_EXECUTION_API_URL": "http://127.0.0.1:18080/execution/",
    "AIRFLOW_CONN_AUTOPO_DB": "postgresql://autopo:pw@127.0.0.1:15432/warehouse",
    "AUTOPO_DATA_DIR": "gs://test-bucket/root",
    "AUTOPO_DATA_CONN_ID": "test_gcs",
    "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": '{"conn_type": "google_cloud_platform", "extra": {"is_anonymous": true}}',
    "STATSD_HOST": "127.0.0.1",
    "STATSD_PORT": "18125",
}
# The secrets every component shares: a variable each, no value in the compose file.
SECRETS = {
    "AIRFLOW_FERNET_KEY": "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW_JWT_SECRET": "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY": "AIRFLOW__API__SECRET_KEY",
}
# Host names of the compose network that an Airflow service may reach.
SERVICE_HOSTS = ("postgres", "redis", "airflow-apiserver", "statsd-exporter", "gcs-emulator")
PIPELINE_METRICS = {
    "files_processed": "autopo_files_processed",
    "files_failed": "autopo_files_failed",
    "rows_loaded": "autopo_rows_loaded",
    "rows_rejected": "autopo_rows_rejected",
    "file_seconds": "autopo_file_seconds",
    "day_seconds": "autopo_day_seconds",
    "last_loaded_timestamp": "autopo_last_loaded_timestamp",
}


# --------------------------------------------------------------------------- the parser


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        message = "docker-compose is not installed (apt-get install -y docker-compose; .ci/run installs it)"
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    """The real parser on the compose file, interpolating from ``env_file`` only: docker-compose reads
    its own environment before the env file, and `make test` exports AUTOPO_DATA_DIR, so it gets
    nothing of this process's environment but PATH and HOME."""
    result = subprocess.run(
        [docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"docker-compose {' '.join(args)} failed:\n{result.stderr}"
    # A ${VAR} without a default would resolve to "" with a warning: every variable has one.
    assert "variable is not set" not in result.stderr, result.stderr
    return result


def write_env_file(path: Path, values: Mapping[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")
    return path


def resolved(tmp_path: Path, values: Mapping[str, str], *profiles: str) -> dict[str, Any]:
    env_file = write_env_file(tmp_path / "compose.env", values)
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    document = yaml.safe_load(run_compose(*args, "config", env_file=env_file).stdout)
    services: dict[str, Any] = document["services"]
    return services


def environment(service: Mapping[str, Any]) -> dict[str, Any]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return dict(raw)


def words(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    assert isinstance(value, list), value
    return [str(item) for item in value]


def airflow_services(services: Mapping[str, Any]) -> dict[str, Any]:
    """The services that run Airflow: those with Airflow's metadata database in their environment."""
    return {
        name: service
        for name, service in services.items()
        if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in environment(service)
    }


def worker_services(services: Mapping[str, Any]) -> dict[str, Any]:
    return {name: service for name, service in services.items() if name.startswith(WORKER_PREFIX)}


def raw_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


# --------------------------------------------------------------------------- the parser accepts it


def test_the_compose_file_parses_alone_and_with_each_profile(tmp_path: Path) -> None:
    empty = write_env_file(tmp_path / "empty.env", {})
    run_compose("config", "-q", env_file=empty)
    for profile in PROFILES:
        run_compose("--profile", profile, "config", "-q", env_file=empty)
    run_compose(*[arg for profile in PROFILES for arg in ("--profile", profile)], "config", "-q", env_file=empty)


def test_optional_services_are_in_their_profiles_and_the_rest_in_none() -> None:
    services = raw_compose()["services"]
    for name, service in services.items():
        expected = PROFILED.get(name)
        profiles = service.get("profiles") or []
        assert profiles == ([expected] if expected else []), f"{name}: profiles {profiles}"


def test_every_service_of_the_official_file_is_there_with_a_worker_per_queue() -> None:
    services = raw_compose()["services"]
    missing = [
        name
        for name in OFFICIAL_SERVICES
        if name not in services and not (name == "airflow-worker" and worker_services(services))
    ]
    assert not missing, f"services of Airflow's official compose file missing: {missing}"
    assert {"gcs-emulator", "statsd-exporter", "prometheus"} <= set(services)


# --------------------------------------------------------------------------- the contract


def test_the_defaults_are_the_compose_services(tmp_path: Path) -> None:
    services = resolved(tmp_path, {})
    airflow = airflow_services(services)
    assert {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"} <= set(airflow)
    assert {"airflow-triggerer", "airflow-worker-stock-health", "airflow-worker-po-snapshots"} <= set(airflow)
    for name, service in airflow.items():
        env = environment(service)
        for variable, (setting, default) in CONTRACT.items():
            assert env.get(setting) == default, f"{name}: {setting} (from {variable}) is {env.get(setting)!r}"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__METRICS__STATSD_ON"] == "true", name


def test_an_env_file_points_every_address_elsewhere(tmp_path: Path) -> None:
    """What a native run (or a worker on another host) relies on: with the contract's variables set,
    no Airflow service's environment names a host of the compose network any more."""
    services = resolved(tmp_path, LOOPBACK)
    for name, service in airflow_services(services).items():
        env = environment(service)
        for variable, (setting, _default) in CONTRACT.items():
            assert env.get(setting) == LOOPBACK[variable], f"{name}: {setting} is {env.get(setting)!r}"
        left = {
            key: value
            for key, value in env.items()
            if isinstance(value, str) and any(re.search(rf"(^|//|@){host}(:\d|/|$)", value) for host in SERVICE_HOSTS)
        }
        assert not left, f"{name}: addresses of the compose network not from a variable: {left}"


def test_secrets_have_no_value_in_the_files(tmp_path: Path) -> None:
    services = resolved(tmp_path, {})
    for name, service in airflow_services(services).items():
        env = environment(service)
        for variable, setting in SECRETS.items():
            assert env.get(setting) == "", f"{name}: {setting} must come from {variable} in .env only"
    example = env_example_values()
    for variable in [*SECRETS, "AIRFLOW_ADMIN_PASSWORD"]:
        assert example.get(variable) == "", f".env.example must list {variable} with no value"
    for key, value in example.items():
        assert not re.search(r"(?i)(secret|password|fernet|key)", key) or value == "", f".env.example: {key}={value}"


def test_the_same_secrets_reach_every_airflow_service(tmp_path: Path) -> None:
    values = {variable: f"value-of-{variable.lower()}" for variable in SECRETS}
    services = resolved(tmp_path, values)
    for name, service in airflow_services(services).items():
        env = environment(service)
        for variable, setting in SECRETS.items():
            assert env.get(setting) == values[variable], f"{name}: {setting}"


# --------------------------------------------------------------------------- workers and queues


def test_a_worker_service_per_pipeline_queue(tmp_path: Path) -> None:
    loaded = load_configs(REPO_ROOT / "dags" / "configs")
    assert not loaded.errors, loaded.errors
    queues = {config.queue for config in loaded.configs.values()}
    assert queues, "no pipeline configs"
    served: dict[str, str] = {}
    for name, service in worker_services(resolved(tmp_path, {})).items():
        argv = words(service.get("command"))
        assert argv[:2] == ["celery", "worker"], f"{name}: command {argv}"
        assert argv.count("-q") == 1, f"{name}: one queue per worker service: {argv}"
        queue = argv[argv.index("-q") + 1]
        assert "," not in queue, f"{name}: serves several queues: {queue}"
        served[queue] = name
    assert set(served) == queues, f"queues of the configs {sorted(queues)}, served by workers {served}"


def test_workers_can_be_scaled() -> None:
    """`docker compose up --scale airflow-worker-stock-health=3`: no fixed name, no host port."""
    for name, service in worker_services(raw_compose()["services"]).items():
        assert "container_name" not in service, name
        assert "ports" not in service, name
        assert "hostname" not in service, name


# --------------------------------------------------------------------------- .env.example


def env_example_values() -> dict[str, str]:
    """The variables .env.example sets (uncommented lines)."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def compose_variables() -> set[str]:
    """Every variable the compose file reads: ${VAR} interpolations (not $${...}, which is the shell's)
    and the environment entries without a value, which pass the variable through."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    names = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    names |= set(re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", text))
    for service in [raw_compose()["x-airflow-common"], *raw_compose()["services"].values()]:
        names |= {key for key, value in environment(service).items() if value is None}
    return names


def test_env_example_documents_every_variable_of_the_compose_file() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    variables = compose_variables()
    assert set(CONTRACT) <= variables and set(SECRETS) <= variables
    missing = sorted(variables - listed)
    assert not missing, f".env.example does not list {missing}"


def test_dotenv_and_secrets_stay_out_of_the_image_build() -> None:
    rules = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "the build context is an allow-list"
    assert not [rule for rule in rules if rule.startswith("!") and (".env" in rule or "requirements-dev" in rule)]


# --------------------------------------------------------------------------- the image


def test_the_image_is_the_official_one_of_the_pinned_airflow() -> None:
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO_ROOT / "requirements.in").read_text(), re.MULTILINE)
    assert pinned is not None
    text = DOCKERFILE.read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases == [f"apache/airflow:{pinned.group(1)}-python3.11"], bases
    assert "requirements-dev" not in re.sub(r"#.*", "", text), "the image installs the runtime pins only"
    baked = re.findall(r"^(?:ENV|ARG)\s+([A-Za-z_][A-Za-z0-9_]*)", text, flags=re.MULTILINE)
    assert not [name for name in baked if re.search(r"(?i)secret|password|fernet|key|token|conn", name)], baked
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] == "airflow", "the image must end as the airflow user"
    for path in ("dags", "plugins", "migrations", "airflow.cfg"):
        assert re.search(rf"^COPY .*\b{re.escape(path)} /opt/airflow/{re.escape(path)}$", text, re.MULTILINE), path


def test_the_init_service_migrates_both_databases_and_makes_the_pools(tmp_path: Path) -> None:
    init = resolved(tmp_path, {})["airflow-init"]
    script = " ".join(words(init.get("command"))).replace("$$", "$")
    assert "airflow db migrate" in script
    migrate = 'python -m autopo_pipelines.migrations --url "$AIRFLOW_CONN_AUTOPO_DB" --dir /opt/airflow/migrations'
    assert migrate in script
    assert "python -m autopo_pipelines.config pools" in script and "airflow pools set" in script


# --------------------------------------------------------------------------- deploy/


def test_the_postgres_init_script_makes_both_databases() -> None:
    script = DEPLOY / "postgres" / "init-databases.sh"
    assert script.stat().st_mode & stat.S_IXUSR, "the postgres image runs it only when executable (else sources it)"
    text = script.read_text(encoding="utf-8")
    for database in ("airflow", "autopo"):
        assert f"CREATE DATABASE {database} OWNER {database}" in text
    mounts = raw_compose()["services"]["postgres"]["volumes"]
    assert any(m.startswith("./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/") for m in mounts)


def glob_match(pattern: str, name: str) -> list[str] | None:
    """statsd-exporter's glob: `*` is one whole dot-separated component; the captures, or None."""
    parts, components = pattern.split("."), name.split(".")
    if len(parts) != len(components):
        return None
    captures = []
    for part, component in zip(parts, components, strict=True):
        if part == "*":
            captures.append(component)
        elif part != component:
            return None
    return captures


def map_metric(mappings: list[dict[str, Any]], name: str) -> tuple[str, dict[str, str]] | None:
    """The Prometheus name and labels statsd-exporter gives a StatsD metric: the first match wins."""
    for mapping in mappings:
        captures = glob_match(mapping["match"], name)
        if captures is None:
            continue

        def fill(template: str, captures: list[str] = captures) -> str:
            return re.sub(r"\$\{?(\d+)\}?", lambda m: captures[int(m.group(1)) - 1], template)

        return fill(mapping["name"]), {key: fill(value) for key, value in (mapping.get("labels") or {}).items()}
    return None


# statsd-exporter's own checks of a mapping file (pkg/mapper/mapper.go), which refuses the whole file at start.
STATSD_MATCH = re.compile(r"^(\*|[a-zA-Z_][a-zA-Z0-9_\-]*)(\.\*|\.[a-zA-Z0-9_][a-zA-Z0-9_\-]*)*$")
PROMETHEUS_NAME = re.compile(r"^([a-zA-Z_]|\$\{?\d+\}?)([a-zA-Z0-9_]|\$\{?\d+\}?)*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")


def test_the_statsd_mapping_is_one_statsd_exporter_accepts() -> None:
    config = yaml.safe_load((DEPLOY / "statsd-exporter" / "mappings.yml").read_text(encoding="utf-8"))
    assert set(config) == {"defaults", "mappings"}
    assert config["defaults"]["match_type"] == "glob"
    for mapping in config["mappings"]:
        assert STATSD_MATCH.match(mapping["match"]), mapping
        assert PROMETHEUS_NAME.match(mapping["name"]), mapping
        assert all(LABEL_NAME.match(label) for label in mapping.get("labels") or {}), mapping


def test_the_pipelines_metrics_reach_prometheus_with_a_pipeline_label() -> None:
    config = yaml.safe_load((DEPLOY / "statsd-exporter" / "mappings.yml").read_text(encoding="utf-8"))
    mappings = config["mappings"]
    for pipeline in load_configs(REPO_ROOT / "dags" / "configs").configs:
        for statsd_name, prometheus_name in PIPELINE_METRICS.items():
            # Airflow's prefix ([metrics] statsd_prefix = airflow) + the pipelines' name.
            mapped = map_metric(mappings, f"airflow.autopo.{pipeline}.{statsd_name}")
            assert mapped == (prometheus_name, {"pipeline": pipeline}), (statsd_name, mapped)
    # The compose file sends to it and prometheus scrapes it where it listens.
    exporter = raw_compose()["services"]["statsd-exporter"]
    assert "--statsd.mapping-config=/etc/statsd-exporter/mappings.yml" in exporter["command"]
    assert "--statsd.listen-udp=:9125" in exporter["command"]
    web_port = next(arg.rsplit(":", 1)[1] for arg in exporter["command"] if arg.startswith("--web.listen-address="))
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"statsd-exporter:{web_port}" in targets
    common = raw_compose()["x-airflow-common"]["environment"]
    assert common["AIRFLOW__METRICS__STATSD_PREFIX"] == "airflow"
