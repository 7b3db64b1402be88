"""docker/ without a Docker engine: the compose file parses, every file it references exists,
every service command is a real `pgmemo` command, the environment the app services set is what
the client reads, and the database image has pgTAP, pg_cron and its preload settings."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import psycopg
import pytest
import yaml
from click.testing import CliRunner

from pgmemo.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"

# What the client reads (DESIGN.md); the compose file may set only names the package reads.
CLIENT_ENV = {
    "DATABASE_URL", "DATABASE_READ_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB",
    "POSTGRES_USER", "POSTGRES_PASSWORD", "PGMEMO_EMBEDDER", "OLLAMA_API_URL",
    "OLLAMA_EMBEDDING_MODEL", "DEFAULT_MEMORY_DOMAIN",
}
_ENV_READ = [
    r"os\.environ\.get\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
    r"os\.environ\[\s*[\"']([A-Z][A-Z0-9_]*)[\"']\s*\]",
    r"os\.getenv\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
    r"envvar\s*=\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_names_read_by_package() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "python" / "pgmemo").rglob("*.py"):
        text = path.read_text()
        for pattern in _ENV_READ:
            names.update(re.findall(pattern, text))
    return names


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return env


def _app_services(compose: dict) -> dict[str, dict]:
    """Services running the pgmemo app image (built from docker/Dockerfile.app)."""
    app_images = {s.get("image") for s in compose["services"].values()
                  if isinstance(s.get("build"), dict)
                  and s["build"].get("dockerfile") == "docker/Dockerfile.app"}
    return {n: s for n, s in compose["services"].items() if s.get("image") in app_images}


def test_compose_parses_with_the_services(compose):
    assert set(compose["services"]) >= {"db", "ollama", "migrate", "worker"}
    db = compose["services"]["db"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    migrate = compose["services"]["migrate"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate.get("restart") == "no", "migrate is one-shot"
    worker = compose["services"]["worker"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["ollama"]["condition"] == "service_healthy"
    assert "nomic-embed-text" in " ".join(compose["services"]["ollama"]["healthcheck"]["test"])


def test_every_referenced_file_exists(compose):
    checked = 0
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            build = {"context": build} if isinstance(build, str) else build
            context = (DOCKER / build.get("context", ".")).resolve()
            assert context.is_dir(), f"{name}: build context {context} is missing"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
            for src in _copy_sources(dockerfile.read_text()):
                assert (context / src).exists(), f"{name}: {dockerfile.name} copies missing {src}"
                checked += 1
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                assert (DOCKER / source).resolve().exists(), f"{name}: volume source {source} missing"
                checked += 1
        entry = service.get("entrypoint") or []
        for arg in entry if isinstance(entry, list) else shlex.split(entry):
            if arg.startswith("/pgmemo/"):  # a script mounted from docker/
                mounted = [v for v in service.get("volumes", []) if f":{arg}" in v]
                assert mounted, f"{name}: entrypoint {arg} is not mounted from docker/"
    assert (ROOT / ".dockerignore").is_file()
    assert checked >= 6


def _copy_sources(dockerfile: str) -> list[str]:
    sources = []
    for line in dockerfile.splitlines():
        parts = line.split()
        if parts and parts[0] == "COPY" and not any(p.startswith("--from") for p in parts):
            sources += [p for p in parts[1:-1] if not p.startswith("--")]
    return sources


def test_scripts_are_executable_shell():
    for script in [DOCKER / "ollama-entrypoint.sh", *DOCKER.glob("initdb/*.sh")]:
        text = script.read_text()
        assert text.startswith("#!/bin/sh"), script
        assert script.stat().st_mode & 0o111, f"{script} is not executable"
    ollama = (DOCKER / "ollama-entrypoint.sh").read_text()
    assert "ollama pull" in ollama and "ollama serve" in ollama


def test_service_commands_are_pgmemo_commands(compose):
    app_dockerfile = (DOCKER / "Dockerfile.app").read_text()
    assert re.search(r'^ENTRYPOINT \["pgmemo"\]', app_dockerfile, re.M)
    assert "pip install ." in app_dockerfile
    services = _app_services(compose)
    assert set(services) >= {"migrate", "worker"}
    for name, service in services.items():
        args = service["command"]
        args = shlex.split(args) if isinstance(args, str) else list(args)
        ctx = click.Context(main, info_name="pgmemo")
        sub, rest = args[0], args[1:]
        cmd = main.get_command(ctx, sub)
        assert cmd is not None, f"{name}: `pgmemo {sub}` is not a command"
        try:
            cmd.make_context(sub, list(rest), parent=ctx)  # unknown options raise
        except click.UsageError as exc:
            pytest.fail(f"{name}: `pgmemo {' '.join(args)}`: {exc}")
    assert services["migrate"]["command"][0] == "migrate"
    assert "--schedule-maintenance" in services["migrate"]["command"]
    assert services["worker"]["command"][0] == "worker"


def test_app_service_environment_is_what_the_client_reads(compose):
    read = env_names_read_by_package()
    assert CLIENT_ENV <= read, f"the package does not read {sorted(CLIENT_ENV - read)}"
    for name, service in _app_services(compose).items():
        unknown = set(_env(service)) - read
        assert not unknown, f"{name} sets variables pgmemo never reads: {sorted(unknown)}"
    worker = _env(compose["services"]["worker"])
    assert worker["PGMEMO_EMBEDDER"] == "ollama"
    assert worker["OLLAMA_API_URL"].startswith("http://ollama:")


def test_database_image_has_pgtap_pg_cron_and_preload():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM pgvector/pgvector:pg1[78]\b", dockerfile, re.M)
    assert "postgresql-${PG_MAJOR}-pgtap" in dockerfile
    assert "postgresql-${PG_MAJOR}-cron" in dockerfile
    assert "shared_preload_libraries=pg_cron" in dockerfile
    assert "cron.database_name=pgmemo" in dockerfile
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["services"]["db"]["environment"]["POSTGRES_DB"] == "pgmemo", \
        "cron.database_name must name the database compose creates"
    initdb = (DOCKER / "initdb" / "10-pgmemo-extensions.sql").read_text()
    assert "CREATE EXTENSION IF NOT EXISTS pg_cron" in initdb


def test_initdb_roles_match_the_migration():
    script = (DOCKER / "initdb" / "20-pgmemo-roles.sh").read_text()
    migration = next((ROOT / "migrations").glob("*_roles.sql")).read_text()
    for role in ("memory_reader", "memory_writer", "memory_worker", "memory_admin"):
        assert role in script and role in migration
    assert "IN ROLE memory_worker" in script


def test_migrate_schedule_maintenance_without_pg_cron_is_a_clear_error(dsn):
    result = CliRunner().invoke(main, ["--dsn", dsn, "migrate", "--schedule-maintenance"])
    assert result.exit_code == 1, result.output
    assert "pg_cron is not installed" in result.output and "0A000" in result.output
    with psycopg.connect(dsn) as conn:  # the migration itself went through
        assert conn.execute("SELECT memory.version() ->> 'schema_version'").fetchone()[0]
