"""Installs where the user is not a superuser (issue 11, item 2), and migrate's lock timeout
(item 4). The non-superuser installs need a cluster where the pgmemo roles do not exist yet
(roles are cluster-wide), so they run on a second embedded server of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from pgmemo import embedded
from pgmemo.client import as_vector, connect_raw
from pgmemo.migrate import MigrationError, bundle, migrate

PSQL = shutil.which("psql") or "/usr/bin/psql"
ROLES = ["memory_reader", "memory_writer", "memory_worker", "memory_admin"]


@pytest.fixture(scope="module")
def fresh_server():
    """A second embedded server with no pgmemo roles (stopped at the end)."""
    tmp = tempfile.mkdtemp(prefix="pgmemo-trust-")
    os.chmod(tmp, 0o755)
    path = Path(tmp) / "data"
    server = embedded.ensure_running(path, tune=False)
    yield server
    try:
        embedded.stop(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _su(server, db="postgres"):
    return psycopg.connect(server.dsn_for(db), autocommit=True)


def _owned_db(server, owner: str, name: str, vector_schema: str) -> str:
    """A database owned by `owner`, with pgvector created by a superuser in vector_schema."""
    with _su(server) as c:
        c.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    with _su(server, name) as c:
        if vector_schema == "public":
            c.execute("CREATE EXTENSION vector")
        else:
            c.execute(f'CREATE SCHEMA "{vector_schema}"')
            c.execute(f'CREATE EXTENSION vector SCHEMA "{vector_schema}"')
            c.execute(f'GRANT USAGE ON SCHEMA "{vector_schema}" TO PUBLIC')
    return make_conninfo(server.dsn_for(name), user=owner)


def _roles_present(server) -> list[str]:
    with _su(server) as c:
        return [r[0] for r in c.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY (%s) ORDER BY rolname", (ROLES,))]


def _every_function_works(dsn: str, vschema: str) -> None:
    """The API, called by the owner (no superuser): domains, writes, searches, the queue,
    diagnostics, indexes, adoption, re-embed, import, bulk load, per-domain grants."""
    v = f"{vschema}.vector" if vschema != "public" else "vector"
    with connect_raw(dsn) as c:
        c.execute("SELECT memory.create_domain('notes', 3)")
        c.execute("SELECT memory.create_domain('halves', 3, embedding_type => 'halfvec')")
        a = c.execute(f"SELECT memory.store('notes', 'alpha memory', '{{\"k\": 1}}', '[1,0,0]'::{v}) AS id").fetchone()["id"]
        c.execute("SELECT memory.store('halves', 'half memory')")
        ids = [r["s"] for r in c.execute(
            f"SELECT s FROM memory.store_many('notes', ARRAY['beta memory', 'gamma memory'], NULL, "
            f"ARRAY['[0,1,0]', NULL]::{v}[]) AS s")]
        assert c.execute("SELECT memory.update('notes', %s, metadata => '{\"k\": 2}')", (a,)).fetchone()
        assert c.execute("SELECT count(*) AS n FROM memory.get('notes', %s)", (a,)).fetchone()["n"] == 1
        assert len(c.execute("SELECT * FROM memory.get_many('notes', %s)", ([a] + ids,)).fetchall()) == 3
        assert c.execute(f"SELECT count(*) AS n FROM memory.search('notes', '[1,0,0]'::{v}, 2)").fetchone()["n"] == 2
        c.execute(f"SELECT * FROM memory.search('notes', '[1,0,0]'::{v}, 2, filter => '{{\"k\": 2}}')")
        assert c.execute("SELECT count(*) AS n FROM memory.search_text('notes', 'memory')").fetchone()["n"] == 3
        c.execute(f"SELECT * FROM memory.search_hybrid('notes', 'alpha', '[1,0,0]'::{v})")
        assert c.execute("SELECT uses_index FROM memory.explain_search('notes')").fetchone()["uses_index"]
        # the planner's count (an estimate that picks hnsw is checked) runs for this owner too:
        # 10,000 rows, one with k = 2, and statistics (which the table's owner may set) that say
        # 30% of them have it
        c.execute("SELECT memory.create_domain('many', 3)")
        c.execute(f"INSERT INTO memory_data.many_memories (content, embedding, metadata) "
                  f"SELECT 'row ' || g, '[1,0,0]'::{v}, jsonb_build_object('k', (g = 1)::int + 1) "
                  f"FROM generate_series(1, 10000) AS g")
        c.execute("ANALYZE memory_data.many_memories")
        c.execute("SELECT pg_restore_attribute_stats('schemaname', 'memory_data', 'relname', "
                  "'many_memories'::text, 'attname', 'metadata', 'inherited', false, "
                  "'most_common_vals', '{\"{\\\"k\\\": 2}\"}'::text, "
                  "'most_common_freqs', '{0.3}'::real[])")
        plan = c.execute("SELECT path, matching_rows, reason FROM memory.explain_search("
                         "'many', 10, '{\"k\": 2}')").fetchone()
        assert plan["path"] == "exact" and plan["matching_rows"] == 1, plan
        assert "counted; the planner estimated" in plan["reason"], plan
        assert c.execute(f"SELECT count(*) AS n FROM memory.search('many', '[1,0,0]'::{v}, 10, "
                         f"filter => '{{\"k\": 2}}')").fetchone()["n"] == 1
        c.execute("SELECT * FROM memory.diagnose()")
        for view in ["domains", "embedding_coverage", "vector_indexes", "queue_status", "workers"]:
            c.execute(f"SELECT * FROM memory.{view}")
        assert c.execute("SELECT memory.count('notes') AS n").fetchone()["n"] == 3
        assert c.execute("SELECT memory.count('notes', '{\"k\": 2}') AS n").fetchone()["n"] == 1
        assert c.execute("SELECT memory.create_metadata_index('notes', 'k', 'number') AS i").fetchone()["i"]
        jobs = c.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w')").fetchall()
        assert jobs
        assert c.execute("SELECT memory.extend_claims(%s, '10 minutes') AS n",
                         ([j["job_id"] for j in jobs],)).fetchone()["n"] == len(jobs)
        done = c.execute(f"SELECT memory.complete_embedding_jobs(%s, %s::{v}[])",
                         ([j["job_id"] for j in jobs], [as_vector([0.5, 0.5, 0.0])] * len(jobs))).fetchone()
        assert list(done.values())[0] == len(jobs)
        c.execute("SELECT memory.fail_embedding_jobs(ARRAY[]::bigint[], 'x')")
        c.execute("SELECT memory.enqueue_missing()")
        c.execute("SELECT memory.requeue_dead()")
        c.execute("SELECT memory.release_expired_claims()")
        c.execute("SELECT memory.run_maintenance()")
        c.execute("SELECT memory.create_hnsw_index('notes', 8, 32)")
        assert c.execute("SELECT count(*) AS n FROM memory.concurrent_index_statements('notes')").fetchone()["n"] >= 1
        c.execute("SELECT memory.queue_counts()")
        c.execute("SELECT memory.version()")
        c.execute("SELECT * FROM memory.api_reference()")
        # adoption of the owner's own table, then a re-embed of it
        c.execute(f"CREATE TABLE public.app_docs (id bigint PRIMARY KEY, body text NOT NULL, emb {v}(3))")
        c.execute("INSERT INTO public.app_docs VALUES (1, 'adopted row', NULL)")
        c.execute("SELECT memory.adopt_table('docs', 'public.app_docs', 'id', 'body', 'emb')")
        assert c.execute("SELECT count(*) AS n FROM memory.search_text('docs', 'adopted')").fetchone()["n"] == 1
        c.execute("SELECT memory.begin_reembed('docs', 'model-2', 3)")
        c.execute("SELECT memory.cancel_reembed('docs')")
        c.execute("SELECT memory.import_rows('notes', ARRAY['i1'], ARRAY['imported'])")
        c.execute("SELECT memory.bulk_load_begin('notes')")
        c.execute("SELECT memory.bulk_load_finish('notes')")
        for r in ROLES[:1]:
            if c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,)).fetchone():
                c.execute("SELECT memory.revoke_domain('notes', %s, 'read')", (r,))
                c.execute("SELECT memory.grant_domain('notes', %s, 'read')", (r,))
        assert c.execute("SELECT memory.forget('notes', %s)", (a,)).fetchone()
        assert c.execute("SELECT memory.forget_many('notes', %s) AS n", ([ids[1], "nope"],)).fetchone()["n"] == 1
        assert c.execute("SELECT memory.clear('halves') AS n").fetchone()["n"] == 1
        c.execute("SELECT memory.drop_domain('docs')")
        c.execute("SELECT memory.drop_domain('halves')")


@pytest.mark.parametrize("vschema", ["public", "extensions"])
def test_owner_without_superuser_or_createrole_installs(fresh_server, vschema):
    """A LOGIN role that owns its database, no SUPERUSER, no CREATEROLE, pgvector created by a
    superuser: `pgmemo migrate` and `psql -f install.sql` succeed, say which roles could not be
    created and the SQL a superuser must run; every API function works for that owner. On the
    landed main, migration 0002 failed: role "memory_writer" does not exist."""
    assert _roles_present(fresh_server) == [], "this test needs a cluster without the roles"
    owner = f"plain_owner_{vschema}"
    with _su(fresh_server) as c:
        c.execute(f'CREATE ROLE "{owner}" LOGIN NOSUPERUSER NOCREATEROLE')
    dsn = _owned_db(fresh_server, owner, f"plain_{vschema}", vschema)
    said: list[str] = []
    result = migrate(dsn, echo=said.append)
    assert result.schema_version >= "0011"
    warning = "\n".join(m for m in said if m.startswith("WARNING"))
    assert "could not create the roles memory_reader, memory_writer, memory_worker, memory_admin" in warning
    assert "CREATE ROLE memory_reader NOLOGIN;" in warning and "GRANT memory_reader TO memory_writer;" in warning
    _every_function_works(dsn, vschema)

    # the single-file installer, through psql 15, on a second such database
    dsn2 = _owned_db(fresh_server, owner, f"plain_psql_{vschema}", vschema)
    script = Path(tempfile.mkdtemp()) / "install.sql"
    script.write_text(bundle())
    proc = subprocess.run([PSQL, dsn2, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "could not create the roles" in proc.stderr and "CREATE ROLE memory_reader NOLOGIN;" in proc.stderr
    _every_function_works(dsn2, vschema)


def test_table_owner_policy_never_runs_as_a_non_superuser_pgmemo(fresh_server):
    """Where pgmemo's owner is not a superuser (managed services), row-level security applies to
    it: a policy of an adopted table's owner would run with pgmemo's rights on every read. Every
    function that reads the table refuses it instead (count, refresh_text_stats and
    create_metadata_index did not check on issue 11's first landing), and the sweeps skip it."""
    with _su(fresh_server) as c:
        c.execute("CREATE ROLE rls_owner LOGIN NOSUPERUSER NOCREATEROLE")
        c.execute("CREATE ROLE rls_tenant LOGIN NOSUPERUSER")
        c.execute("GRANT rls_tenant TO rls_owner")  # pgmemo's owner may act for the tenant
    dsn = _owned_db(fresh_server, "rls_owner", "rls_db", "public")
    migrate(dsn, echo=lambda m: None)
    with connect_raw(dsn) as o, connect_raw(make_conninfo(dsn, user="rls_tenant")) as t:
        o.execute("CREATE SCHEMA app AUTHORIZATION rls_tenant")
        t.execute("CREATE TABLE app.docs (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3))")
        t.execute("INSERT INTO app.docs VALUES (1, 'tenant memory', NULL)")
        t.execute("CREATE TABLE app.ran (who text, what text)")
        t.execute("GRANT INSERT, SELECT ON app.ran TO PUBLIC")
        t.execute("""CREATE FUNCTION app.spy(x text) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO app.ran SELECT current_user, x
                  WHERE NOT EXISTS (SELECT FROM app.ran WHERE what = x); RETURN true; END $$""")
        o.execute("SELECT memory.adopt_table('docs', 'app.docs', 'id', 'body', 'emb')")
        assert o.execute("SELECT memory.count('docs') AS n").fetchone()["n"] == 1  # before the plant
        t.execute("ALTER TABLE app.docs ENABLE ROW LEVEL SECURITY")
        t.execute("CREATE POLICY p ON app.docs USING (app.spy('policy'))")
        for sql in ["SELECT memory.count('docs')", "SELECT memory.refresh_text_stats('docs')",
                    "SELECT memory.create_metadata_index('docs', 'id')",
                    "SELECT * FROM memory.get('docs', '1')", "SELECT * FROM memory.search_text('docs', 'tenant')",
                    "SELECT * FROM memory.search('docs', '[1,0,0]')",
                    "SELECT * FROM memory.search_hybrid('docs', 'tenant', '[1,0,0]')"]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                o.execute(sql)
        for sql in ["SELECT memory.refresh_text_stats()", "SELECT memory.run_maintenance()",
                    "SELECT * FROM memory.domains", "SELECT * FROM memory.embedding_coverage",
                    "SELECT * FROM memory.diagnose()"]:
            o.execute(sql).fetchall()
        assert t.execute("SELECT * FROM app.ran").fetchall() == []
        o.execute("SELECT memory.drop_domain('docs')")


def test_write_cost_migration_as_a_non_superuser_owner(fresh_server):
    """Migration 0022 on a database whose domains were made before it, run by pgmemo's owner with
    no SUPERUSER (managed services): toast_tuple_target on pgmemo's own table and the pending
    list of its GIN indexes and of an adopted table's helper index (the table of a role pgmemo's
    owner may act for, as adoption needs) are set; the adopted table's own settings are not."""
    with _su(fresh_server) as c:
        c.execute("CREATE ROLE wc_owner LOGIN NOSUPERUSER NOCREATEROLE")
        c.execute("CREATE ROLE wc_tenant LOGIN NOSUPERUSER")
        c.execute("GRANT wc_tenant TO wc_owner")
    dsn = _owned_db(fresh_server, "wc_owner", "wc_db", "public")
    migrate(dsn, echo=lambda m: None)
    with connect_raw(dsn) as o, connect_raw(make_conninfo(dsn, user="wc_tenant")) as t:
        o.execute("CREATE SCHEMA app AUTHORIZATION wc_tenant")
        t.execute("CREATE TABLE app.docs (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3))")
        o.execute("SELECT memory.adopt_table('docs', 'app.docs', 'id', 'body', 'emb')")
        o.execute("SELECT memory.create_domain('old', 3)")
        # as migration 0018 left them
        o.execute("ALTER TABLE memory_data.old_memories RESET (toast_tuple_target)")
        for idx in ("memory_data.old_memories_fts", "memory_data.old_memories_metadata_gin",
                    "app.pgmemo_docs_fts"):
            o.execute(f"ALTER INDEX {idx} SET (gin_pending_list_limit = 64)")
        o.execute((Path(__file__).resolve().parents[2] / "migrations" / "0022_write_cost.sql")
                  .read_text())
        got = {r["relname"]: r["reloptions"] for r in o.execute(
            "SELECT relname, reloptions FROM pg_catalog.pg_class WHERE relname IN ('old_memories',"
            " 'old_memories_fts', 'old_memories_metadata_gin', 'docs', 'pgmemo_docs_fts')")}
        assert got == {"old_memories": ["toast_tuple_target=4080"],
                       "old_memories_fts": ["gin_pending_list_limit=256"],
                       "old_memories_metadata_gin": ["gin_pending_list_limit=256"],
                       "pgmemo_docs_fts": ["gin_pending_list_limit=256"],
                       "docs": None}
        o.execute("SELECT memory.drop_domain('old')")
        o.execute("SELECT memory.drop_domain('docs')")


def test_roles_created_later_by_a_superuser_are_used(fresh_server):
    """After the install above, a superuser runs the SQL the warning printed; migrate again
    grants the API to the roles, and a login member of memory_reader searches."""
    dsn = make_conninfo(fresh_server.dsn_for("plain_public"), user="plain_owner_public")
    with _su(fresh_server) as c:
        for r in ROLES:
            c.execute(f"CREATE ROLE {r} NOLOGIN")
        c.execute("GRANT memory_reader TO memory_writer")
        c.execute("GRANT memory_writer TO memory_admin")
        c.execute("GRANT memory_worker TO memory_admin")
        c.execute("CREATE ROLE plain_reader LOGIN IN ROLE memory_reader")
    said: list[str] = []
    migrate(dsn, echo=said.append)
    assert not [m for m in said if m.startswith("WARNING")]
    with connect_raw(make_conninfo(dsn, user="plain_reader")) as r:
        assert r.execute("SELECT count(*) AS n FROM memory.search_text('notes', 'memory')").fetchone()["n"] >= 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            r.execute("SELECT memory.store('notes', 'not a writer')")


def test_createrole_owner_creates_the_roles(tmp_path):
    """A CREATEROLE owner (not a superuser) creates the four roles and their memberships."""
    tmp = tempfile.mkdtemp(prefix="pgmemo-trust-cr-")
    os.chmod(tmp, 0o755)
    path = Path(tmp) / "data"
    server = embedded.ensure_running(path, tune=False)
    try:
        with _su(server) as c:
            c.execute('CREATE ROLE cr_owner LOGIN NOSUPERUSER CREATEROLE')
        dsn = _owned_db(server, "cr_owner", "cr_db", "public")
        said: list[str] = []
        migrate(dsn, echo=said.append)
        assert not [m for m in said if m.startswith("WARNING")], said
        assert _roles_present(server) == sorted(ROLES)
        with _su(server) as c:
            members = {(r[0], r[1]) for r in c.execute(
                "SELECT g.rolname, m.rolname FROM pg_auth_members AS am "
                "JOIN pg_roles AS g ON g.oid = am.roleid JOIN pg_roles AS m ON m.oid = am.member "
                "WHERE g.rolname LIKE 'memory_%' AND m.rolname LIKE 'memory_%'")}
        assert members == {("memory_reader", "memory_writer"), ("memory_writer", "memory_admin"),
                           ("memory_worker", "memory_admin")}
        _every_function_works(dsn, "public")
    finally:
        embedded.stop(path)
        shutil.rmtree(tmp, ignore_errors=True)


def test_migrate_times_out_behind_a_reader_and_names_it(dsn):
    """A long reader of a pgmemo view holds its lock: migrate waits at most lock_timeout per
    attempt (instead of forever, with every new reader queued behind it), prints who blocks, and
    retries; it succeeds once the reader is gone."""
    reader = psycopg.connect(dsn)  # one open transaction
    reader.execute("SELECT * FROM memory.domains")
    reader_pid = reader.info.backend_pid
    said: list[str] = []
    with pytest.raises(MigrationError) as err:
        migrate(dsn, echo=said.append, lock_timeout=0.3, retries=1)
    assert f"pid {reader_pid}" in str(err.value)
    assert any(f"pid {reader_pid}" in m and "retrying" in m for m in said), said

    said.clear()

    def finish_reader(msg: str) -> None:
        said.append(msg)
        if "retrying" in msg and not reader.closed:
            reader.commit()
            reader.close()

    result = migrate(dsn, echo=finish_reader, lock_timeout=0.3, retries=3)
    assert result.repeatable and any("retrying" in m for m in said)


def test_install_sql_waits_for_a_reader_with_a_timeout_and_names_it(dsn, tmp_path):
    """`psql -f install.sql` behind a long reader of a pgmemo view: each attempt to lock the views
    waits at most pgmemo_lock_timeout (so new readers are not queued behind the install for
    long), names the blocking session and retries; out of retries it fails with nothing changed;
    once the reader is gone it installs."""
    script = tmp_path / "install.sql"
    script.write_text(bundle())
    reader = psycopg.connect(dsn)  # one open transaction
    reader.execute("SELECT * FROM memory.domains")
    pid = reader.info.backend_pid
    args = [PSQL, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "pgmemo_lock_timeout=200ms"]
    proc = subprocess.run(args + ["-v", "pgmemo_lock_retries=1", "-f", str(script)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f"pid {pid}" in proc.stderr and "retrying (1/1)" in proc.stderr and "2 times" in proc.stderr
    # the reader ends while the install retries: it goes through
    p = subprocess.Popen(args + ["-v", "pgmemo_lock_retries=100", "-f", str(script)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = []
    for line in p.stderr:
        said.append(line)
        if "retrying" in line:
            assert f"pid {pid}" in line
            reader.commit()
            reader.close()
            break
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, "".join(said) + err
    assert "pgmemo schema version" in out
