"""Upgrading from every landed schema version gives the same database as a fresh install.

For every schema version in the git history (found automatically: the commits that added a file
to migrations/), the test takes two releases of it: the commit where the version landed and the
last commit before the next version landed (for the newest version: HEAD). For each, it

1. installs that commit's migrations/ and sql/ with that commit's own runner (its
   python/pgmemo/migrate.py, run in a subprocess), into a new database;
2. puts data in it through that release's SQL API: a factory domain with embedded rows, queued
   jobs and a claim whose lease ran out; where the release has them, an adopted table, a re-embed
   in progress and a halfvec domain;
3. upgrades it with this checkout's runner (`pgmemo migrate`);
4. compares the catalog (catalog_snapshot.sql: tables, columns, indexes, constraints, functions
   with their definitions and settings, grants, comments, triggers, ...) with a fresh install of
   this checkout holding the same domains: pgmemo's own objects must match exactly, and every
   domain's table, indexes and triggers must match the same domain made fresh;
5. checks the data: every memory is still there and readable through the API, every row without
   an embedding is still queued (none lost, none doubled), the queue drains, the re-embed
   finishes, searches find every row.

Without the git history (a shallow clone, an sdist) the test skips, saying why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from conftest import dsn_for
from pgmemo import resources
from pgmemo.client import MemoryStore, connect_raw
from pgmemo.migrate import migrate

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_SQL = (Path(__file__).parent / "catalog_snapshot.sql").read_text()
# Objects that belong to a domain's table (and so exist only where that domain was made).
DOMAIN_SCHEMAS = ("memory_data.", "app.")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout


@dataclass(frozen=True)
class Release:
    version: str  # the newest migration of this release, e.g. '0003'
    commit: str
    label: str  # 'landed' (the commit that added the migration) or 'last' (just before the next)

    @property
    def id(self) -> str:
        return f"{self.version}-{self.label}-{self.commit[:7]}"


def _history_problem() -> str | None:
    try:
        inside = _git("rev-parse", "--is-inside-work-tree").strip()
        shallow = _git("rev-parse", "--is-shallow-repository").strip()
    except OSError:
        return "git is not installed: cannot install earlier releases from the history"
    except subprocess.CalledProcessError as exc:
        return f"no git history here ({exc.stderr.strip()}): cannot install earlier releases"
    if inside != "true":
        return "not a git work tree: cannot install earlier releases"
    if shallow == "true":
        return ("shallow clone: earlier releases are not in the history "
                "(git fetch --unshallow to run the upgrade test)")
    return None


def landed_releases() -> list[Release]:
    """Two releases per schema version: where it landed and its last commit before the next.

    The history is replayed commit by commit (first parent, renames as delete + add) to know the
    migrations/ files of every commit. A commit is a release only when its migrations/ is one
    this checkout can upgrade: every file name exists here and no version number is taken twice
    (a branch's work-in-progress commits, landed with it, may hold a migration under a number
    it gave up at landing). Its schema version is its newest migration.
    """
    if _history_problem():
        return []
    current = {p.name for p in resources.migration_files()}
    commits = _git("log", "--reverse", "--first-parent", "--format=%H").split()
    changes = _git("log", "--reverse", "--first-parent", "-m", "--no-renames", "--format=@%H",
                   "--name-status", "--", "migrations/")
    changed: dict[str, list[tuple[str, str]]] = {}
    commit = None
    for line in changes.splitlines():
        if line.startswith("@"):
            commit = line[1:]
        elif line.strip():
            status, path = line.split("\t", 1)
            changed.setdefault(commit, []).append((status[0], path.split("/", 1)[1]))
    files: set[str] = set()
    groups: dict[str, list[tuple[str, bool]]] = {}  # version -> [(commit, touched migrations/)]
    for commit in commits:
        for status, name in changed.get(commit, []):
            if status == "D":
                files.discard(name)
            else:
                files.add(name)
        names = {f for f in files if f[:4].isdigit() and f.endswith(".sql")}
        numbers = [f[:4] for f in names]
        if not names or not names <= current or len(set(numbers)) != len(numbers):
            continue
        groups.setdefault(max(numbers), []).append((commit, commit in changed))
    releases, seen = [], set()
    for version in sorted(groups):
        group = groups[version]
        # A fix to migrations/ before the next version landed (0002 was linted 23 s after it
        # landed) belongs to the landing: no release shipped the unfixed file. Later edits of a
        # landed file are not forgiven: the upgrade then fails on the checksum, as for users.
        fixed = max(i for i, (_, touched) in enumerate(group) if touched) \
            if any(touched for _, touched in group) else 0
        for label, commit in (("landed", group[fixed][0]), ("last", group[-1][0])):
            # Two commits with the same SQL are one release as far as the database can tell.
            key = tuple(_git("rev-parse", f"{commit}:migrations", f"{commit}:sql").split())
            if key in seen:
                continue
            seen.add(key)
            releases.append(Release(version, commit, label))
    return releases


RELEASES = landed_releases()


def test_every_landed_version_is_covered():
    problem = _history_problem()
    if problem:
        pytest.skip(problem)
    ours = {p.name[:4] for p in resources.migration_files()}
    committed = {r.version for r in RELEASES}
    # Every committed version is tested; the checkout may have one more (not yet committed).
    assert committed and committed <= ours
    assert len(ours - committed) <= 1, f"versions without a release to upgrade from: {ours - committed}"
    assert "0001" in committed


# -- installing an earlier release -------------------------------------------------------------

def _extract(commit: str, dest: Path) -> Path:
    """migrations/, sql/ and the python package of `commit`, as they were, under dest."""
    paths = ["migrations", "sql", "python/pgmemo"]
    data = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit, *paths],
                          capture_output=True, check=True, timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _install_release(commit: str, dsn: str, tmp: Path) -> None:
    """Run that release's own migration runner (its migrate.py) in a subprocess."""
    tree = _extract(commit, tmp / commit[:12])
    # The first commit had no __init__.py: without one, the installed pgmemo would win the import.
    (tree / "python" / "pgmemo" / "__init__.py").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGMEMO_")}
    env["PYTHONPATH"] = str(tree / "python")
    code = ("import sys, pgmemo.migrate as m; "
            "assert m.__file__.startswith(sys.argv[2]), m.__file__; "
            "m.migrate(sys.argv[1])")
    proc = subprocess.run([sys.executable, "-c", code, dsn, str(tree)], env=env, cwd=tree,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"installing {commit[:7]} failed:\n{proc.stderr[-3000:]}"


def _new_database(name: str) -> str:
    with psycopg.connect(dsn_for("postgres"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    dsn = dsn_for(name)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION vector")
    return dsn


def _drop_database(name: str) -> None:
    with psycopg.connect(dsn_for("postgres"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- data, through the release's own SQL API ---------------------------------------------------

@dataclass
class Features:
    adopt: bool
    reembed: bool
    halfvec: bool


def _features(conn) -> Features:
    def has(fn: str, arg: str | None = None) -> bool:
        return conn.execute(
            "SELECT EXISTS (SELECT FROM pg_proc WHERE pronamespace = 'memory'::regnamespace"
            " AND proname = %s AND (%s::text IS NULL OR %s = ANY (proargnames)))",
            (fn, arg, arg)).fetchone()["exists"]
    return Features(adopt=has("adopt_table"), reembed=has("begin_reembed"),
                    halfvec=has("create_domain", "embedding_type"))


NOTES = [  # (id, content, metadata, embedding or None)
    ("a", "alpha memory", {"topic": "greek", "n": 1}, "[1,0,0]"),
    ("b", "beta memory", {"topic": "greek", "n": 2}, "[0,1,0]"),
    ("g", "gamma, claimed by a worker before the upgrade", {}, None),
    ("d", "delta waits for its embedding", {"tags": ["x", "y"]}, None),
    ("e", "epsilon waits too", {}, None),
]


def seed(conn, features: Features) -> int:
    """The same data in any release (its API only); features say which kinds of domain exist."""
    conn.execute("SELECT memory.create_domain('notes', 3)")
    for rid, content, metadata, emb in NOTES:
        conn.execute("SELECT memory.store('notes', %s, %s::jsonb, %s::vector, %s)",
                     (content, json.dumps(metadata), emb, rid))
    # A worker has a job in hand across the upgrade (it completes it afterwards).
    claimed = conn.execute(
        "SELECT job_id, row_id FROM memory.claim_embedding_jobs(1, 'old-worker', '1 hour')"
    ).fetchall()
    assert [r["row_id"] for r in claimed] == ["g"]
    job_in_hand = claimed[0]["job_id"]
    if features.adopt:
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.docs (id bigint PRIMARY KEY, body text NOT NULL,"
                     " emb vector(3), note text)")
        conn.execute("INSERT INTO app.docs VALUES (1, 'adopted one', '[1,1,0]', 'kept'),"
                     " (2, 'adopted two', NULL, NULL)")
        conn.execute("SELECT memory.adopt_table('docs', 'app.docs'::regclass, 'id', 'body', 'emb')")
        conn.execute("INSERT INTO app.docs VALUES (3, 'adopted three, written after adoption',"
                     " NULL, 'x')")
    if features.reembed:
        conn.execute("SELECT memory.create_domain('moving', 3)")
        conn.execute("SELECT memory.store('moving', 'first to move', '{}', '[1,0,1]', 'm1')")
        conn.execute("SELECT memory.store('moving', 'second to move', '{}', '[0,1,1]', 'm2')")
        conn.execute("SELECT memory.begin_reembed('moving', 'model-b', 4)")
    if features.halfvec:
        conn.execute("SELECT memory.create_domain('half', 3, embedding_type => 'halfvec')")
        conn.execute("SELECT memory.store('half', 'half stored', '{}', '[0.5,0.5,0]', 'h1')")
        conn.execute("SELECT memory.store('half', 'half waiting', '{}', NULL, 'h2')")
    return job_in_hand


def snapshot(dsn: str) -> dict[tuple[str, str], str]:
    with psycopg.connect(dsn) as c:
        return {(kind, obj): detail for kind, obj, detail in c.execute(SNAPSHOT_SQL).fetchall()}


def _owner(obj: str, tables: set[str]) -> str | None:
    """The domain table (or 'app' schema) an object belongs to, if any."""
    if obj == "app":
        return obj if any(t.startswith("app.") for t in tables) else None
    for table in tables:
        if obj == table or obj.startswith(table + "."):
            return table
    return None


def _table_of_index(fresh_or_old: dict, name: str) -> str:
    detail = fresh_or_old[("index", name)]
    return detail.split(" ON ", 1)[1].split(" USING ", 1)[0].replace("ONLY ", "")


# The trigger functions made per domain (sql/43_wire.sql): memory_private.pgmemo_<domain>_<kind>().
_WIRED = re.compile(r"^memory_private\.pgmemo_(.+)_(before_update|enqueue|dequeue|unstale|claim|complete|text)\(.*\)$")


# memory.search's static branches, one per domain (memory_private._search_static_refresh), and
# memory.search_hybrid's (memory_private._search_hybrid_static_refresh).
_SEARCH_BRANCHES = re.compile(r"CASE v_d\.domain.*?ELSE(?=\s+v_static := false;\s+-- not generated)",
                              re.S)
_HYBRID_BRANCHES = re.compile(r"CASE v_d\.domain.*?ELSE(?=\s+NULL;\s+-- not generated)", re.S)


def split(snap: dict, tables: set[str], domains: set[str] = frozenset()) -> tuple[dict, dict]:
    """(pgmemo's own objects, the objects of the given domain tables and domains)."""
    core, domain = {}, {}
    for key, detail in snap.items():
        kind, obj = key
        if kind == "function" and obj.startswith(("memory_private._search_text_static(",
                                                   "memory_private._search_text_hybrid_static(",
                                                   "memory_private._search_hybrid_static(")):
            # generated from the domain registry (sql/31_bm25.sql; the last, retired by
            # migration 0023, in older releases):
            # one branch per domain, so it differs whenever the seeded domains do (older
            # releases seed fewer)
            continue
        if kind == "function" and obj.startswith("memory.search("):
            # generated too (sql/30_search.sql): the same but for its branch per domain
            detail = _SEARCH_BRANCHES.sub("CASE v_d.domain <branches> ELSE", detail)
        if kind == "function" and obj.startswith("memory.search_hybrid("):
            # generated too (sql/37_search_hybrid.sql), with its branch per domain
            detail = _HYBRID_BRANCHES.sub("CASE v_d.domain <branches> ELSE", detail)
        name = obj
        wired = _WIRED.match(obj) if kind == "function" else None
        if wired:
            if wired.group(1) in domains:
                domain[key] = detail
            continue
        if kind == "index" and obj.startswith(DOMAIN_SCHEMAS):
            name = _table_of_index(snap, obj)
        if obj.startswith(DOMAIN_SCHEMAS) or obj == "app":
            if _owner(name, tables) is not None:
                domain[key] = detail
        else:
            core[key] = detail
    return core, domain


# Domain tables made by an older factory keep two details a fresh factory makes differently; the
# upgrade leaves them alone on purpose (changing them would lock every domain table, and neither
# changes behaviour). Everything else about an old domain must be as fresh.
#  - embedding column storage: PLAIN since 0004_halfvec for new tables only (docs/UPGRADING.md);
#  - the metadata CHECK constraint: '<table>_metadata_object' before commit 866014b, renamed
#    '<table>_metadata_obj' so that 40-character domain names are not truncated.
def forgive_legacy_domain_tables(old: dict) -> dict:
    out = {}
    for (kind, obj), detail in old.items():
        if kind == "column" and obj.startswith("memory_data.") and obj.endswith(".embedding"):
            fields = detail.split(" | ")
            if fields[6] in ("e", "x", "m"):  # position | type | not null | default | identity
                fields[6] = "p"                # | generated | storage | ...
            detail = " | ".join(fields)
        if kind == "constraint" and obj.startswith("memory_data.") \
                and obj.endswith("_metadata_object"):
            obj = obj[:-len("ect")]
        out[(kind, obj)] = detail
    return out


def _no_column_positions(domain_objects: dict) -> dict:
    """Domain tables' columns without their position: a migration that adds a column to
    existing domain tables (0009_text_search: content_tsv) appends it after any column added
    since (a re-embed's shadow columns), so only the order differs from a fresh install, and
    nothing reads domain tables by column position."""
    out = {}
    for (kind, obj), detail in domain_objects.items():
        if kind == "column":
            detail = " | ".join(detail.split(" | ")[1:])
        out[(kind, obj)] = detail
    return out


def diff(left: dict, right: dict, left_name: str, right_name: str) -> list[str]:
    out = []
    for key in sorted(set(left) | set(right)):
        if left.get(key) != right.get(key):
            out.append(f"{key[0]} {key[1]}:\n  {left_name}: {left.get(key)}\n"
                       f"  {right_name}: {right.get(key)}")
    return out


def _domain_tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            "SELECT c.oid::regclass::text FROM pg_class AS c"
            " WHERE c.relnamespace IN ('memory_data'::regnamespace, to_regnamespace('app'))"
            " AND c.relkind IN ('r', 'p')").fetchall()
    return {r[0] for r in rows}


# -- the fresh install to compare with ---------------------------------------------------------

@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """This checkout installed on an empty database, with every kind of domain seeded."""
    if _history_problem():
        pytest.skip(_history_problem())
    name = f"pgmemo_upgrade_fresh_{os.getpid()}"
    dsn = _new_database(name)
    migrate(dsn)
    with connect_raw(dsn) as c:
        seed(c, _features(c))
    # As in the upgraded database, the last migrate ran after the domains were made (it revokes
    # PUBLIC's rights on every domain table, which gives each table an explicit ACL).
    migrate(dsn)
    yield dsn, snapshot(dsn)
    _drop_database(name)


# -- the test ----------------------------------------------------------------------------------

def _domains_view(conn) -> dict[str, dict]:
    return {r["domain"]: {k: v for k, v in r.items() if k not in ("created_at",)}
            for r in conn.execute("SELECT * FROM memory.domains").fetchall()}


_PARAMS = [pytest.param(r, id=r.id) for r in RELEASES] or [pytest.param(
    None, id="no-history", marks=pytest.mark.skip(reason=_history_problem() or "no release"))]


@pytest.mark.parametrize("release", _PARAMS)
def test_upgrade_from_release_equals_fresh_install(release: Release, fresh, tmp_path):
    fresh_dsn, fresh_snap = fresh
    name = f"pgmemo_upgrade_{release.version}_{release.label}_{os.getpid()}"
    dsn = _new_database(name)
    try:
        _install_release(release.commit, dsn, tmp_path)
        with connect_raw(dsn) as c:
            features = _features(c)
            job_in_hand = seed(c, features)
            adopted_before = c.execute("SELECT * FROM app.docs ORDER BY id").fetchall() \
                if features.adopt else []

        result = migrate(dsn)  # the upgrade, with this checkout's runner
        assert result.schema_version == resources.schema_version()
        # ... and what run_maintenance completes after it, without blocking writers: the content
        # sizes of a text index made by 0024 (sql/45_adopt.sql, _text_sizes_fill)
        with connect_raw(dsn) as c:
            c.execute("SELECT memory_private._text_index_fill_all(1000000)")

        # 1. The catalog: pgmemo's objects exactly as fresh; each domain as the same domain fresh.
        tables = _domain_tables(dsn)
        with psycopg.connect(dsn) as c:
            domains = {r[0] for r in c.execute("SELECT domain FROM memory_private.domains")}
        old_core, old_domains = split(snapshot(dsn), tables, domains)
        new_core, new_domains = split(fresh_snap, tables, domains)
        problems = diff(old_core, new_core, "upgraded", "fresh")
        problems += diff(_no_column_positions(forgive_legacy_domain_tables(old_domains)),
                         _no_column_positions(new_domains), "upgraded", "fresh")
        assert not problems, (f"upgrading from {release.id} differs from a fresh install:\n"
                              + "\n".join(problems))

        # 2. The data, through this checkout's client and API.
        check_data(dsn, fresh_dsn, features, adopted_before, job_in_hand)
    finally:
        _drop_database(name)


def check_data(dsn: str, fresh_dsn: str, features: Features, adopted_before: list,
               job_in_hand: int) -> None:
    with MemoryStore.connect(dsn, embedder=None) as s, connect_raw(dsn) as c, \
            connect_raw(fresh_dsn) as f:
        # The registry reads as it does for the same domains made fresh.
        upgraded, made_fresh = _domains_view(c), _domains_view(f)
        assert set(upgraded) <= set(made_fresh)
        for domain, row in upgraded.items():
            assert row == made_fresh[domain], domain
        # Every memory is there, as written.
        got = {r["id"]: r for r in c.execute(
            "SELECT * FROM memory.get_many('notes', %s)", ([n[0] for n in NOTES],)).fetchall()}
        for rid, content, metadata, emb in NOTES:
            assert got[rid]["content"] == content and got[rid]["metadata"] == metadata
            assert (got[rid]["embedding"] is not None) == (emb is not None)
        if features.adopt:
            assert c.execute("SELECT * FROM app.docs ORDER BY id").fetchall() == adopted_before

        # The job claimed before the upgrade completes after it.
        assert c.execute("SELECT memory.complete_embedding_jobs(%s, %s::vector[]) AS n",
                         ([job_in_hand], ["[0,0,1]"])).fetchone()["n"] == 1
        # Every other row without an embedding has exactly one job, claimable now.
        expected = {("notes", "d"), ("notes", "e")}
        if features.adopt:
            expected |= {("docs", "2"), ("docs", "3")}
        if features.halfvec:
            expected.add(("half", "h2"))
        jobs = c.execute("SELECT * FROM memory.claim_embedding_jobs(100, 'new-worker')").fetchall()
        assert sorted((j["domain"], j["row_id"]) for j in jobs) == sorted(expected)
        reembed_jobs = []
        if features.reembed:  # the shadow domain's jobs go to workers that ask for it
            reembed_jobs = c.execute("SELECT * FROM memory.claim_embedding_jobs(100, 'reembedder',"
                                     " only_domain => 'moving__next')").fetchall()
            jobs += reembed_jobs
            assert sorted(j["row_id"] for j in reembed_jobs) == ["m1", "m2"]
            assert {(j["embedding_model"], j["dimension"]) for j in reembed_jobs} == {("model-b", 4)}
        vectors = {j["job_id"]: ([0.0, 0.0, 1.0] if j["dimension"] == 3 else [0.0, 0.0, 0.0, 1.0])
                   for j in jobs}
        done = c.execute("SELECT memory.complete_embedding_jobs(%s, %s::vector[])",
                         (list(vectors), [str(v) for v in vectors.values()])).fetchone()
        assert next(iter(done.values())) == len(jobs)
        assert c.execute("SELECT count(*) AS n FROM memory.claim_embedding_jobs(100, 'w')"
                         ).fetchone()["n"] == 0

        # Searches find the rows, old and new.
        assert s.search([1, 0, 0], domain="notes", k=1)[0]["id"] == "a"
        assert {r["id"] for r in s.search([0, 0, 1], domain="notes", k=3)} == {"g", "d", "e"}
        assert s.search_text("beta", domain="notes", k=1)[0]["id"] == "b"
        if features.adopt:
            assert s.search([1, 1, 0], domain="docs", k=1)[0]["id"] == "1"
        if features.halfvec:
            assert s.search([0.5, 0.5, 0], domain="half", k=1)[0]["id"] == "h1"
        if features.reembed:
            c.execute("SELECT memory.finish_reembed('moving')")
            hits = s.search([0, 0, 0, 1], domain="moving", k=2)
            assert {h["id"] for h in hits} == {"m1", "m2"}

        # And new writes go through the upgraded triggers.
        s.store("written after the upgrade", domain="notes", id="new")
        assert [(j["domain"], j["row_id"]) for j in c.execute(
            "SELECT * FROM memory.claim_embedding_jobs(10, 'w')").fetchall()] == [("notes", "new")]


def test_0037_resolves_grants_by_name_once(tmp_path):
    """Migration 0037 on grants kept by name (0011 to 0036): a role that exists keeps its grant,
    now by OID; the grant of a role dropped, or renamed, before the upgrade (left on a name no
    role has) is deleted; the default grants of an API role missing at the upgrade wait as
    pending rows, granted by the migrate run that finds the role."""
    previous = [r for r in RELEASES if r.version == "0036"]
    if not previous:
        pytest.skip(_history_problem() or "no release of schema 0036 in the history")
    pid = os.getpid()
    kept, renamed, dropped = (f"pgmemo_u_{what}_{pid}" for what in ("kept", "renamed", "dropped"))
    away = f"pgmemo_u_worker_away_{pid}"
    name = f"pgmemo_upgrade_0037_{pid}"
    dsn = _new_database(name)
    su = psycopg.connect(dsn_for("postgres"), autocommit=True)
    for r in (kept, renamed, dropped):
        su.execute(f'CREATE ROLE "{r}"')
    worker_away = False
    try:
        _install_release(previous[-1].commit, dsn, tmp_path)
        with connect_raw(dsn) as c:
            c.execute("SELECT memory.create_domain('notes', 3)")
            for r in (kept, renamed, dropped):
                c.execute("SELECT memory.grant_domain('notes', %s, 'read')", (r,))
        su.execute(f'ALTER ROLE "{renamed}" RENAME TO "{renamed}_new"')
        su.execute(f'DROP ROLE "{dropped}"')
        su.execute(f'ALTER ROLE memory_worker RENAME TO "{away}"')  # as if never made
        worker_away = True

        migrate(dsn)
        grants = "SELECT array_agg(g ORDER BY g) AS g FROM (SELECT role_id::regrole::text " \
                 "|| ':' || access AS g FROM memory_private.domain_access " \
                 "WHERE domain = 'notes') AS x"
        with connect_raw(dsn) as c:
            assert c.execute(grants).fetchone()["g"] == sorted(
                [f"{kept}:read", "memory_reader:read", "memory_writer:write"])
            assert c.execute("SELECT array_agg(role_name || ':' || access ORDER BY access) AS p "
                             "FROM memory_private.domain_access_pending").fetchone()["p"] == [
                "memory_worker:read", "memory_worker:write"]
        su.execute(f'ALTER ROLE "{away}" RENAME TO memory_worker')
        worker_away = False

        migrate(dsn)  # finds memory_worker: its default grants now
        with connect_raw(dsn) as c:
            assert c.execute(grants).fetchone()["g"] == sorted(
                [f"{kept}:read", "memory_reader:read", "memory_worker:read", "memory_worker:write",
                 "memory_writer:write"])
            assert c.execute("SELECT count(*) AS n FROM memory_private.domain_access_pending"
                             ).fetchone()["n"] == 0
    finally:
        if worker_away:
            su.execute(f'ALTER ROLE "{away}" RENAME TO memory_worker')
        _drop_database(name)
        for r in (kept, f"{renamed}_new", renamed, dropped):
            su.execute(f'DROP ROLE IF EXISTS "{r}"')
        su.close()
