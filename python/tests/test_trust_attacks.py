"""Trust (issue 11), every function: each public function of pgmemo is called, by the role an
attacker would use, against an adopted table whose owner planted triggers (every event, row and
statement level) and a row-level security policy; nothing of theirs may run with pgmemo's rights,
and every function that reads or writes the table must refuse it. A function added to schema
memory without an entry in CALLS fails test_every_function_has_an_attack, so none slips through.
Also: bounded array arguments, the queue functions' per-domain access, and an adopted table's
full-text index, which must never fail the application's own writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from helpers import one, trusting
from pgmemo.client import as_vector, connect_raw

DIM = 3
REFUSED = psycopg.errors.InsufficientPrivilege
# (role, SQL, outcome): role alice = the table's owner (memory_admin), bob = a plain writer,
# worker = memory_worker; outcome REFUSED (42501), an error class (refused earlier for another
# reason, before touching the table), or None (may succeed: touches no row of the table).
# {job} is a job of the adopted domain claimed before the plants.
CALLS: dict[str, list[tuple[str, str, object]]] = {
    "store": [("bob", "SELECT memory.store('docs', 'x')", REFUSED)],
    "store_many": [("bob", "SELECT * FROM memory.store_many('docs', ARRAY['x', 'y'])", REFUSED)],
    "update": [("bob", "SELECT memory.update('docs', '1', content => 'changed')", REFUSED)],
    "forget": [("bob", "SELECT memory.forget('docs', '1')", REFUSED)],
    "forget_many": [("bob", "SELECT memory.forget_many('docs', ARRAY['1'])", REFUSED)],
    "clear": [("alice", "SELECT memory.clear('docs')", REFUSED)],
    "get": [("bob", "SELECT * FROM memory.get('docs', '1')", REFUSED)],
    "get_many": [("bob", "SELECT * FROM memory.get_many('docs', ARRAY['1'])", REFUSED)],
    "search": [("bob", "SELECT * FROM memory.search('docs', '[1,0,0]')", REFUSED),
               ("bob", "SELECT * FROM memory.search('docs', '[1,0,0]', filter => '{\"k\": 1}')", REFUSED),
               # an operator filter: the planner's estimate and its count would read the table
               ("bob", "SELECT * FROM memory.search('docs', '[1,0,0]', filter => "
                       "'{\"k\": {\"$gte\": 0}}')", REFUSED)],
    "search_text": [("bob", "SELECT * FROM memory.search_text('docs', 'memory')", REFUSED)],
    "search_hybrid": [("bob", "SELECT * FROM memory.search_hybrid('docs', 'memory', '[1,0,0]')", REFUSED),
                      ("bob", "SELECT * FROM memory.search_hybrid('docs', 'memory', '[1,0,0]', "
                              "filter => '{\"k\": 1}')", REFUSED)],
    "count": [("bob", "SELECT memory.count('docs')", REFUSED),
              ("bob", "SELECT memory.count('docs', '{\"id\": \"1\"}')", REFUSED)],
    "explain_search": [("bob", "SELECT * FROM memory.explain_search('docs')", REFUSED),
                       ("bob", "SELECT * FROM memory.explain_search('docs', 10, '{\"k\": 1}')", REFUSED)],
    "diagnose": [("bob", "SELECT * FROM memory.diagnose('docs')", None),  # says why (stop 26)
                 ("bob", "SELECT * FROM memory.diagnose()", None)],
    "queue_counts": [("bob", "SELECT * FROM memory.queue_counts('docs')", REFUSED),
                     ("bob", "SELECT * FROM memory.queue_counts()", None)],
    "create_metadata_index": [("alice", "SELECT memory.create_metadata_index('docs', 'id')", REFUSED)],
    "refresh_text_stats": [("alice", "SELECT memory.refresh_text_stats('docs')", REFUSED),
                           ("alice", "SELECT memory.refresh_text_stats()", None)],
    "sync_text_index": [("alice", "SELECT memory.sync_text_index('docs')", REFUSED)],
    "fill_text_index": [("alice", "SELECT memory.fill_text_index('docs', 10)", REFUSED)],
    "enqueue_missing": [("alice", "SELECT memory.enqueue_missing('docs')", REFUSED),
                        ("alice", "SELECT memory.enqueue_missing()", None)],
    "begin_reembed": [("alice", "SELECT memory.begin_reembed('docs', 'm2', 3)", REFUSED)],
    "reembed_status": [("bob", "SELECT * FROM memory.reembed_status('docs')", REFUSED)],
    "finish_reembed": [("alice", "SELECT memory.finish_reembed('docs')", psycopg.errors.UndefinedObject)],
    "cancel_reembed": [("alice", "SELECT memory.cancel_reembed('docs')", psycopg.errors.UndefinedObject)],
    "bulk_load_begin": [("alice", "SELECT memory.bulk_load_begin('docs')", REFUSED)],
    "bulk_load_finish": [("alice", "SELECT memory.bulk_load_finish('docs')", REFUSED)],
    "import_rows": [("alice", "SELECT memory.import_rows('docs', ARRAY['9'], ARRAY['x'])", REFUSED)],
    "adopt_table": [("alice", "SELECT memory.adopt_table('docs2', 'app.docs', 'id', 'body', 'emb')", REFUSED)],
    "create_hnsw_index": [("alice", "SELECT memory.create_hnsw_index('docs')", None)],
    "concurrent_index_statements": [("alice", "SELECT * FROM memory.concurrent_index_statements('docs')", None)],
    # Citus: refused for adopted domains (and without Citus) before anything is read
    "distribute_domain": [("alice", "SELECT memory.distribute_domain('docs')", psycopg.errors.FeatureNotSupported)],
    "repair_shard_indexes": [("alice", "SELECT memory.repair_shard_indexes('docs')", psycopg.Error)],
    # the queue: claims skip the domain, completion fails its job alone; the rest touch only
    # the queue table
    "claim_embedding_jobs": [("worker", "SELECT * FROM memory.claim_embedding_jobs(10, 'w')", None),
                             ("worker", "SELECT * FROM memory.claim_embedding_jobs(10, 'w', "
                              "only_domain => 'docs')", REFUSED)],
    "extend_claims": [("worker", "SELECT memory.extend_claims(ARRAY[{job}]::bigint[])", None)],
    "complete_embedding_jobs": [("worker", "SELECT memory.complete_embedding_jobs(ARRAY[{job}]::bigint[], "
                                 "ARRAY['[1,0,0]']::vector[])", None)],
    "fail_embedding_jobs": [("worker", "SELECT memory.fail_embedding_jobs(ARRAY[{job}]::bigint[], 'x')", None)],
    "release_claims": [("worker", "SELECT memory.release_claims(ARRAY[{job}]::bigint[])", None)],
    "release_expired_claims": [("worker", "SELECT memory.release_expired_claims()", None)],
    "requeue_dead": [("alice", "SELECT memory.requeue_dead('docs')", None)],
    "worker_heartbeat": [("worker", "SELECT memory.worker_heartbeat('w')", None)],
    "worker_stopped": [("worker", "SELECT memory.worker_stopped('w')", None)],
    "run_maintenance": [("worker", "SELECT memory.run_maintenance()", None),
                        ("alice", "SELECT memory.run_maintenance()", None)],
    "schedule_maintenance": [("alice", "SELECT memory.schedule_maintenance()", psycopg.Error)],
    # no table of anyone's: grants, settings, metadata
    "create_domain": [("alice", "SELECT memory.create_domain('other', 3)", None)],
    "grant_domain": [("alice", "SELECT memory.grant_domain('docs', 'memory_reader', 'read')", None)],
    "revoke_domain": [("alice", "SELECT memory.revoke_domain('docs', 'memory_reader', 'write')", None)],
    "set_max_content_bytes": [("alice", "SELECT memory.set_max_content_bytes('docs', 2000000)", None)],
    "version": [("bob", "SELECT memory.version()", None)],
    "api_reference": [("bob", "SELECT * FROM memory.api_reference()", None)],
    # releasing the table runs none of its code (last: the domain is gone after it)
    "drop_domain": [("alice", "SELECT memory.drop_domain('docs')", None)],
}
# the views: the unsafe domain shows NULL counts instead of failing (or running the policy)
VIEWS = ["domains", "embedding_coverage", "vector_indexes", "queue_status", "workers"]


def _ran(conn) -> list[tuple]:
    return [(r["who"], r["what"]) for r in conn.execute("SELECT who, what FROM app.ran").fetchall()]


def _plant_loggers(a) -> None:
    """In alice's schema app: app.ran, where her code logs who ran it; app.evil(), a trigger
    function, and app.evil_bool(x), for policies and defaults, that log and let the row pass."""
    a.execute("CREATE TABLE app.ran (who text, what text)")
    a.execute("GRANT INSERT ON app.ran TO PUBLIC")
    a.execute("GRANT USAGE ON SCHEMA app TO PUBLIC")
    a.execute("""CREATE FUNCTION app.evil() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO app.ran VALUES (current_user, TG_NAME); RETURN coalesce(NEW, OLD); END $$""")
    a.execute("""CREATE FUNCTION app.evil_bool(x text) RETURNS boolean LANGUAGE plpgsql
        AS $$ BEGIN INSERT INTO app.ran VALUES (current_user, x); RETURN true; END $$""")


def _is_super(conn, name: str) -> bool:
    return conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (name,)).fetchone()["rolsuper"]


def _alice_adopts_docs(conn, roles, values: str, while_trusted=None):
    """alice (memory_admin) owns app.docs (rows: values), adopted as domain docs while she is a
    member of pgmemo's owner (a table of a role pgmemo does not trust is refused, stop 26); then
    she is not, and plays the attacker, with app.ran for her code to log in. while_trusted runs
    (with her connection) before her trust ends; returns (alice, her connection, what it
    returned)."""
    alice, alice_dsn = roles("memory_admin", prefix="alice")
    conn.execute(f'CREATE SCHEMA app AUTHORIZATION "{alice}"')
    a = connect_raw(alice_dsn)
    a.execute(f"CREATE TABLE app.docs (id bigint PRIMARY KEY, body text NOT NULL, emb vector({DIM}))")
    a.execute(f"INSERT INTO app.docs VALUES {values}")
    with trusting(conn, alice):
        a.execute("SELECT memory.adopt_table('docs', 'app.docs', 'id', 'body', 'emb')")
        done = while_trusted(a) if while_trusted else None
    a.execute("CREATE TABLE app.ran (who text, what text)")
    a.execute("GRANT INSERT ON app.ran TO PUBLIC")
    a.execute("GRANT USAGE ON SCHEMA app TO PUBLIC")
    return alice, a, done


@pytest.fixture
def planted(conn, roles):
    """alice (memory_admin) owns app.docs, adopted as domain docs with a job claimed; then she
    plants triggers on every event (row and statement level) and a row-level security policy,
    each logging who ran it and, when that is a superuser, making alice one."""
    bob, bob_dsn = roles("memory_writer", prefix="bob")
    worker, worker_dsn = roles("memory_worker", prefix="worker")

    def claim(a):
        a.execute("SELECT memory.enqueue_missing('docs')")
        return conn.execute("SELECT job_id FROM memory.claim_embedding_jobs(10, 'w', "
                            "only_domain => 'docs')").fetchone()["job_id"]
    alice, a, job = _alice_adopts_docs(conn, roles, "(1, 'first memory', NULL), "
                                       "(2, 'second memory', '[1,0,0]')", claim)
    a.execute("""CREATE FUNCTION app.evil() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO app.ran VALUES (current_user, TG_NAME);
            IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('ALTER ROLE %I SUPERUSER', (SELECT relowner::regrole::text
                    FROM pg_class WHERE oid = 'app.docs'::regclass));
            END IF;
            RETURN coalesce(NEW, OLD);
        END $$""")
    a.execute("""CREATE FUNCTION app.evil_bool(x text) RETURNS boolean LANGUAGE plpgsql
        AS $$ BEGIN INSERT INTO app.ran VALUES (current_user, x); RETURN true; END $$""")
    a.execute("CREATE TRIGGER ev_row BEFORE INSERT OR UPDATE OR DELETE ON app.docs "
              "FOR EACH ROW EXECUTE FUNCTION app.evil()")
    a.execute("CREATE TRIGGER ev_stmt AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON app.docs "
              "FOR EACH STATEMENT EXECUTE FUNCTION app.evil()")
    a.execute("ALTER TABLE app.docs ENABLE ROW LEVEL SECURITY")
    a.execute("CREATE POLICY p ON app.docs USING (app.evil_bool('policy')) WITH CHECK (app.evil_bool('check'))")
    conns = {"alice": a, "bob": connect_raw(bob_dsn), "worker": connect_raw(worker_dsn)}
    yield dict(alice=alice, conns=conns, job=job)
    for c in conns.values():
        c.close()


def test_every_function_has_an_attack(conn):
    """Every function and view in schema memory is in CALLS / VIEWS: a new one must be attacked
    here before it lands."""
    functions = {r["proname"] for r in conn.execute(
        "SELECT DISTINCT p.proname FROM pg_proc AS p WHERE p.pronamespace = 'memory'::regnamespace")}
    assert functions - set(CALLS) == set(), "functions without an attack in CALLS"
    assert set(CALLS) - functions == set(), "CALLS names functions that do not exist"
    views = {r["relname"] for r in conn.execute(
        "SELECT c.relname FROM pg_class AS c WHERE c.relnamespace = 'memory'::regnamespace "
        "AND c.relkind = 'v'")}
    assert views == set(VIEWS)
    definer = conn.execute("SELECT count(*) AS n FROM pg_proc WHERE pronamespace = 'memory'::regnamespace "
                           "AND NOT prosecdef").fetchone()["n"]
    assert definer == 0, "every memory.* function runs with definer rights (90_grants.sql)"


def test_planted_code_never_runs_with_pgmemo_rights(conn, planted):
    """The attack on every function: triggers and a policy planted by the table's owner; each
    call by the role that may make it either refuses (42501 for everything that reads or writes
    the table) or touches none of the table's rows; nothing planted ever runs, and the owner
    never becomes SUPERUSER. (On the main of issue 11's first landing, count,
    create_metadata_index and refresh_text_stats read or indexed the table without the check.)"""
    conns, failures = planted["conns"], []
    for fn, calls in CALLS.items():
        for who, sql, outcome in calls:
            c = conns[who]
            try:
                c.execute(sql.replace("{job}", str(planted["job"]))).fetchall()
                err = None
            except psycopg.Error as exc:
                err = exc
            if outcome is None:
                pass  # either way: what matters is that nothing ran
            elif err is None or not isinstance(err, outcome):
                failures.append(f"{fn}: {sql} -> {err!r}, expected {outcome.__name__}")
            if _ran(conn):
                failures.append(f"{fn}: {sql} ran the planted code: {_ran(conn)}")
                conn.execute("TRUNCATE app.ran")
        if fn == "diagnose":  # the views, as the reader, while the domain exists
            for view in VIEWS:
                conns["bob"].execute(f"SELECT * FROM memory.{view}").fetchall()
            row = conns["bob"].execute("SELECT rows FROM memory.domains WHERE domain = 'docs'").fetchone()
            assert row["rows"] is None
    assert failures == []
    assert _ran(conn) == []
    assert not _is_super(conn, planted["alice"])
    # the planted code is live: the owner's own writes run it, as herself
    conns["alice"].execute("INSERT INTO app.docs VALUES (3, 'hers', NULL)")
    assert {w for w, _ in _ran(conn)} == {planted["alice"]}


def test_filter_compile_is_bounded(conn):
    """Bounded cost of the worst filter: the compile grows with the square of a filter's keys
    (5,000 dotted keys took 13 s), so a filter takes at most 256 keys (54000, before the walk);
    and the plain-filter test reads the filter's text with a regular expression, which a 96,000
    character value built to bait it ('"x.": ' again and again) does not slow down."""
    conn.execute("SELECT memory.create_domain('fb', 3)")
    conn.execute("SET statement_timeout = '3s'")
    try:
        many = {f"a{i}.b": i for i in range(257)}
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="more than 256 keys"):
            conn.execute("SELECT * FROM memory.search('fb', '[1,0,0]', 5, %s)", (json.dumps(many),))
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="more than 256 keys"):
            conn.execute("SELECT memory.count('fb', %s)", (json.dumps({"$or": [{"k": {"$gte": i}}
                                                                               for i in range(200)]}),))
        del many["a0.b"]
        conn.execute("SELECT * FROM memory.search('fb', '[1,0,0]', 5, %s)", (json.dumps(many),))
        bait = {"k": '"x.": ' * 12000}  # 96,009 characters once escaped
        assert conn.execute("SELECT count(*) AS n FROM memory.search('fb', '[1,0,0]', 5, %s)",
                            (json.dumps(bait),)).fetchone()["n"] == 0
        plain_many = {f"k{i}": i for i in range(1000)}  # one containment: no walk
        assert conn.execute("SELECT memory.count('fb', %s) AS n",
                            (json.dumps(plain_many),)).fetchone()["n"] == 0
        # stop 28 (an attack): its values count too, at any depth (an array of 19,001 values in
        # a plain filter took a reader's search 41 s on 20,000 rows of an adopted table)
        for f in ({f"k{i}": i for i in range(1001)}, {"tags": ["j"] * 1001},
                  {"$or": [{"tags": ["j"] * 1001}, {"n": 1}]},
                  {"tags": {"$in": [["j"] * 1001]}}):
            with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="more than 1000 values"):
                conn.execute("SELECT * FROM memory.search('fb', '[1,0,0]', 5, %s)", (json.dumps(f),))
        # stop 28 (an attack): each value of an $in or $nin list is a containment test on every
        # row read (two lists of 24,000 took a reader's search 96 s on 20,000 rows): a filter
        # holds at most 1,000 values, the lists counted by their length, on every path
        over = [
            {"k": {"$in": list(range(1001))}},
            {"$or": [{"k": {"$nin": list(range(600))}}, {"j": {"$in": list(range(401))}}]},
            {"id": {"$in": [str(i) for i in range(1001)]}},
            {"created_at": {"$nin": ["2020-01-01"] * 1001}},
        ]
        for f in over:
            for sql in ("SELECT * FROM memory.search('fb', '[1,0,0]', 5, %s)",
                        "SELECT memory.count('fb', %s)",
                        "SELECT * FROM memory.search_text('fb', 'word', 5, %s)",
                        "SELECT * FROM memory.explain_search('fb', 5, %s)"):
                with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="more than 1000 values"):
                    conn.execute(sql, (json.dumps(f),))
        at_cap = {"$or": [{"k": {"$nin": list(range(599))}}, {"j": {"$in": list(range(401))}}]}
        assert conn.execute("SELECT memory.count('fb', %s) AS n",
                            (json.dumps(at_cap),)).fetchone()["n"] == 0
    finally:
        conn.execute("RESET statement_timeout")


def test_array_arguments_are_bounded(conn):
    """Bounded cost: an array argument holds at most 100,000 elements (1,000,000 ids took
    forget_many 2.8 s and get_many 3.7 s on 2,000 rows), refused with 54000 before any work;
    leases at most a day; a worker's name and info are bounded."""
    conn.execute("SELECT memory.create_domain('b', 3)")
    over = [str(i) for i in range(100001)]
    calls = [
        ("SELECT memory.forget_many('b', %s)", (over,)),
        ("SELECT * FROM memory.get_many('b', %s)", (over,)),
        ("SELECT * FROM memory.store_many('b', %s)", (over,)),
        ("SELECT * FROM memory.import_rows('b', %s, %s)", (over, over)),
        ("SELECT memory.extend_claims(%s::bigint[])", (over,)),
        ("SELECT memory.release_claims(%s::bigint[])", (over,)),
        ("SELECT memory.fail_embedding_jobs(%s::bigint[], 'x')", (over,)),
        ("SELECT memory.complete_embedding_jobs(%s::bigint[], array_fill(NULL::vector, ARRAY[100001]))", (over,)),
    ]
    for sql, args in calls:
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="100001 elements; one call takes at most 100000"):
            conn.execute(sql, args)
    ok = over[:100000]
    assert conn.execute("SELECT memory.forget_many('b', %s) AS n", (ok,)).fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM memory.get_many('b', %s)", (ok,)).fetchone()["n"] == 0
    for sql in ["SELECT memory.extend_claims(ARRAY[1]::bigint[], '25 hours')",
                "SELECT * FROM memory.claim_embedding_jobs(1, 'w', '2 days')"]:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="at most 1 day"):
            conn.execute(sql)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="info is"):
        conn.execute("SELECT memory.worker_heartbeat('w', 0, 0, jsonb_build_object('a', repeat('x', 70000)))")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="worker is"):
        conn.execute("SELECT * FROM memory.claim_embedding_jobs(1, repeat('w', 2000))")
    # a batch's contents together: 64 MB (or the domain's maximum when larger)
    conn.execute("SELECT memory.set_max_content_bytes('b', 40000000)")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="together"):
        conn.execute("SELECT * FROM memory.store_many('b', ARRAY[repeat('a ', 18000000), repeat('b ', 18000000)])")


def test_queue_functions_check_the_domain(conn, roles):
    """A worker must not extend, release, fail or complete jobs of a domain it may not write by
    naming their ids (issue 11: extend_claims did no per-domain check; a completion of another
    domain's job counted a failed attempt against it)."""
    for d in ["health", "startup"]:
        conn.execute("SELECT memory.create_domain(%s, 3)", (d,))
        conn.execute("SELECT memory.store(%s, %s)", (d, f"{d} row"))
    conn.execute("SELECT memory.revoke_domain('health', 'memory_worker', 'write')")
    _, wdsn = roles("memory_worker", prefix="wk")
    w = connect_raw(wdsn)
    # an allowed worker (the admin) holds the health job; the restricted one holds startup's
    held = conn.execute("SELECT * FROM memory.claim_embedding_jobs(1, 'good', '1 minute', 'health')").fetchone()
    mine = w.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w')").fetchall()
    assert [j["domain"] for j in mine] == ["startup"]

    def job():
        return conn.execute("SELECT status, attempts, lease_until, claimed_by FROM memory_private.embedding_queue "
                            "WHERE job_id = %s", (held["job_id"],)).fetchone()

    before = job()
    ids = [held["job_id"], mine[0]["job_id"]]
    assert w.execute("SELECT memory.extend_claims(%s, '1 hour') AS n", (ids,)).fetchone()["n"] == 1
    assert job() == before
    assert w.execute("SELECT memory.fail_embedding_jobs(%s, 'boom') AS n", ([held["job_id"]],)).fetchone()["n"] == 0
    assert w.execute("SELECT memory.release_claims(%s) AS n", ([held["job_id"]],)).fetchone()["n"] == 0
    assert w.execute("SELECT memory.complete_embedding_jobs(%s, ARRAY['[1,0,0]']::vector[]) AS n",
                     ([held["job_id"]],)).fetchone()["n"] == 0
    assert job() == before
    assert conn.execute("SELECT embedding FROM memory_data.health_memories").fetchone()["embedding"] is None
    # its own jobs: all four work
    assert w.execute("SELECT memory.release_claims(%s) AS n", ([mine[0]["job_id"]],)).fetchone()["n"] == 1
    w.close()


def _worst_case_words(n_chars: int) -> str:
    """Distinct hyphenated words of letters whose lower case is longer in UTF-8 (Ⱥ -> ⱥ: 2 -> 3
    bytes), indexed whole and in parts: about 2.5 bytes of lexemes per byte of text."""
    letters = [chr(570), chr(574), chr(572), chr(576)]

    def word(i: int) -> str:
        return "".join(letters[(i >> (2 * b)) & 3] for b in range(9))

    out, size, i = [], 0, 0
    while size < n_chars:
        w = f"{word(i)}-{word(i + 100000)}"
        out.append(w)
        size += len(w) + 1
        i += 1
    return " ".join(out)[:n_chars]


def _distinct_words(n_bytes: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words, size, i = [], 0, 0
    while size < n_bytes:
        w, j = "", i
        for _ in range(6):
            w += letters[j % 26]
            j //= 26
        words.append("q" + w)
        size += len(w) + 2
        i += 1
    return " ".join(words)


def test_adopted_table_keeps_its_own_writes(conn):
    """Issue 11: a row with more distinct words than a tsvector holds made the APPLICATION's own
    INSERT fail on pgmemo's full-text index of its adopted table (a write that worked before
    adoption). The text index (memory_data.<domain>_text since 0024) reads a bounded prefix: the
    INSERT succeeds, search_text still finds rows (words of a long row's first 100,000
    characters too)."""
    conn.execute("CREATE TABLE public.app_notes (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3))")
    conn.execute("INSERT INTO public.app_notes VALUES (1, 'a small note about zebras', NULL)")
    conn.execute("SELECT memory.adopt_table('notes', 'public.app_notes', 'id', 'body', 'emb')")
    huge = "platypus " + _distinct_words(1_300_000)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):  # the limit is real
        conn.execute("SELECT to_tsvector('english', %s)", (huge,))
    conn.execute("INSERT INTO public.app_notes VALUES (2, %s, NULL)", (huge,))
    conn.execute("INSERT INTO public.app_notes VALUES (3, %s, NULL)", (_worst_case_words(300_000),))
    conn.execute("UPDATE public.app_notes SET body = body || ' ' || %s WHERE id = 1", (_worst_case_words(150_000),))
    assert [r["id"] for r in conn.execute("SELECT id FROM memory.search_text('notes', 'zebras')")] == ["1"]
    assert [r["id"] for r in conn.execute("SELECT id FROM memory.search_text('notes', 'platypus')")] == ["2"]
    assert conn.execute("SELECT count(*) AS n FROM memory_data.notes_text").fetchone()["n"] == 3
    # pgmemo's own tables: the same content is a clear error, before any work
    conn.execute("SELECT memory.create_domain('own', 3)")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="too many distinct words"):
        conn.execute("SELECT memory.store('own', %s)", (_worst_case_words(250_000),))


def test_migration_rebuilds_an_adopted_full_text_index(conn):
    """The migration rebuilds an existing adopted domain's index (the old whole-content
    expression) in place; an index already holding the new expression is kept. (0024 then
    replaces it with the text index beside the table: the next migrate run drops it.)"""
    conn.execute("CREATE TABLE public.old_notes (id text PRIMARY KEY, body text NOT NULL, emb vector(3))")
    conn.execute("INSERT INTO public.old_notes VALUES ('1', 'zebras again', NULL)")
    conn.execute("SELECT memory.adopt_table('old', 'public.old_notes', 'id', 'body', 'emb')")
    # as adopted before 0024: no text index, the expression index on the table
    conn.execute("SELECT memory_private._unwire(d) FROM memory_private.domains AS d WHERE d.domain = 'old'")
    conn.execute("DROP VIEW memory_data.old_memories")
    conn.execute("DROP TABLE memory_data.old_text")
    conn.execute("SELECT memory_private._adopted_view(d, memory_private._adopted_opt(d)), "
                 "memory_private._wire(d) FROM memory_private.domains AS d WHERE d.domain = 'old'")
    conn.execute("SELECT memory_private._search_static_refresh()")  # (its branches as then)
    conn.execute("CREATE INDEX pgmemo_old_fts ON public.old_notes USING gin (to_tsvector('english'::regconfig, body))")
    migration = next(Path(__file__).resolve().parents[2].glob("migrations/*_adopted_text_prefix.sql"))
    conn.execute(migration.read_text())
    indexdef = conn.execute("SELECT pg_get_indexdef('public.pgmemo_old_fts'::regclass) AS d").fetchone()["d"]
    assert '"left"(body, 100000)' in indexdef
    oid = conn.execute("SELECT 'public.pgmemo_old_fts'::regclass::oid AS o").fetchone()["o"]
    conn.execute(migration.read_text())
    assert conn.execute("SELECT 'public.pgmemo_old_fts'::regclass::oid AS o").fetchone()["o"] == oid
    conn.execute("INSERT INTO public.old_notes VALUES ('2', %s, NULL)", (_distinct_words(1_300_000),))
    assert [r["id"] for r in conn.execute("SELECT id FROM memory.search_text('old', 'zebras')")] == ["1"]
    conn.execute("SELECT memory_private._after_migrate()")
    assert conn.execute("SELECT to_regclass('public.pgmemo_old_fts') AS r").fetchone()["r"] is None
    assert conn.execute("SELECT count(*) AS n FROM memory_data.old_text").fetchone()["n"] == 2
    assert [r["id"] for r in conn.execute("SELECT id FROM memory.search_text('old', 'zebras')")] == ["1"]


def test_diagnose_exact_count_bound_is_capped(conn):
    """memory.diagnose is a reader's call and pgmemo.diagnose_exact_rows the reader's session's:
    a reader's 1e15 made every call compare whole tables (stop 26's attack review). The value is
    capped at 1,000,000, and one that is not a count is the default."""
    for value, bound in [(None, 100000), ("5000", 5000), ("5000000", 1000000), ("1e15", 100000),
                         ("-1", 100000), ("lots", 100000), ("99999999999999999999", 100000)]:
        conn.execute("SELECT set_config('pgmemo.diagnose_exact_rows', %s, false)", (value or "",))
        assert conn.execute("SELECT memory_private._diagnose_exact_rows() AS n").fetchone()["n"] == bound
    conn.execute("SELECT set_config('pgmemo.diagnose_exact_rows', '1e15', false)")
    assert conn.execute("SELECT count(*) AS n FROM memory.diagnose()").fetchone() is not None


def test_metadata_is_bounded(conn):
    """Bounded cost: a metadata was unbounded (a writer could store hundreds of MB, indexed key by
    key). At most 1 MB per memory (54000), in every write that takes one."""
    conn.execute("SELECT memory.create_domain('md', 3)")
    rid = conn.execute("SELECT memory.store('md', 'small') AS id").fetchone()["id"]
    big = "jsonb_build_object('k', (SELECT jsonb_agg(md5(i::text)) FROM generate_series(1, 40000) i))"
    for sql in [f"SELECT memory.store('md', 'x', {big})",
                f"SELECT memory.update('md', '{rid}', metadata => {big})",
                f"SELECT * FROM memory.store_many('md', ARRAY['x'], ARRAY[{big}])",
                f"SELECT * FROM memory.import_rows('md', ARRAY['i'], ARRAY['x'], ARRAY[{big}])"]:
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="bytes; at most 1048576"):
            conn.execute(sql)
    small = "jsonb_build_object('k', (SELECT jsonb_agg(md5(i::text)) FROM generate_series(1, 1000) i))"
    conn.execute(f"SELECT memory.store('md', 'x', {small})")


def test_hybrid_worst_input_is_bounded(conn):
    """Bounded cost of memory.search_hybrid's one statement (its generated branch), worst input: k
    1000 (the most vector rows, each scored), 64 distinct words (the most a query takes), every one
    of them in every row yet counted as rare by statistics refreshed before the rows came (so each
    is looked up in the full-text index, at most 100 postings a word). It stays within the bounds
    (1,000 rows scored, 6,400 postings) and a few seconds; a 65th word and k 1001 are refused.
    search_text's proximity bonus on the same rows: 63 pairs found in each row scored; and with
    the words common, their best rows at the most a query takes beside the rarest's postings."""
    conn.execute("SELECT memory.create_domain('hw', 3)")
    conn.execute("SELECT memory.store('hw', 'seed', embedding => '[0,0,1]')")
    conn.execute("SELECT memory.refresh_text_stats('hw')")  # 1 row: no common lexemes
    words = [f"qz{i}x" for i in range(65)]  # (65 lexemes: no stop word, no two stem alike)
    body = " ".join(words[:64])
    conn.execute("SELECT count(*) FROM memory.store_many('hw', "
                 "(SELECT array_agg(%s || ' row' || g) FROM generate_series(1, 3000) AS g), NULL, "
                 "(SELECT array_agg(format('[%%s,%%s,1]', g %% 7, g %% 11)::vector) "
                 " FROM generate_series(1, 3000) AS g))", (body,))
    conn.execute("SET statement_timeout = '10s'")
    try:
        with conn.transaction():
            conn.execute("SET LOCAL track_functions = 'all'")
            rows = conn.execute("SELECT id, similarity, text_rank FROM memory.search_hybrid('hw', %s, "
                                "'[1,1,1]', 1000)", (body,)).fetchall()
            general = conn.execute(
                "SELECT coalesce(pg_stat_get_xact_function_calls('memory_private._hybrid_candidates("
                "memory_private.domains, text, vector, integer, jsonb, integer, text, boolean)'"
                "::regprocedure), 0) AS n").fetchone()["n"]
        assert len(rows) == 1000 and general == 0, (len(rows), general)
        assert all(r["text_rank"] > 0 for r in rows)
        # search_text's worst input for its proximity bonus (stop 27): the same 64 words, side
        # by side in every row (63 pairs, each matched in every row), every candidate scored,
        # at the largest weight
        with conn.transaction():
            conn.execute("SET LOCAL pgmemo.bm25_proximity = 10")
            conn.execute("SET LOCAL pgmemo.bm25_rerank = 1000")
            text = conn.execute("SELECT count(*) AS n, min(rank) AS low FROM memory.search_text("
                                "'hw', %s, 1000)", (body,)).fetchone()
        # (the rows the candidate cap lets in: 20,000 postings shared by 64 words, 312 each)
        assert text["n"] == 20000 // 64 and text["low"] > 0, text
        # the same 64 words, now common (statistics refreshed after the rows came): every word
        # but the rarest brings its best rows (memory_private.text_top, 1,000 a query at most,
        # as slices of its arrays: stop 35), the rarest its postings up to the cap, every
        # candidate scored
        conn.execute("SELECT memory.refresh_text_stats('hw')")
        assert conn.execute("SELECT count(*) AS n FROM memory_private.text_top "
                            "WHERE domain = 'hw'").fetchone()["n"] == 64
        with conn.transaction():
            conn.execute("SET LOCAL pgmemo.bm25_budget = 0")
            conn.execute("SET LOCAL pgmemo.bm25_rerank = 1000")
            text = conn.execute("SELECT count(*) AS n, min(rank) AS low FROM memory.search_text("
                                "'hw', %s, 1000)", (body,)).fetchone()
        assert text["n"] == 1000 and text["low"] > 0, text
        # stop 37: rows waiting for their embedding, three times as many as the call reads,
        # every one holding all 64 words twice (the best text scores): ranked by the words
        # alone, the branch's top rows are the _hybrid_waiting_rows() it read, and no more
        bound = one(conn, "SELECT memory_private._hybrid_waiting_rows()")
        conn.execute("SELECT count(*) FROM memory.store_many('hw', (SELECT array_agg("
                     "%s || ' ' || %s || ' waiting' || g) FROM generate_series(1, %s) AS g))",
                     (body, body, 3 * bound))
        by_words = ", vector_weight => 0, text_weight => 1"
        with conn.transaction():
            conn.execute("SET LOCAL track_functions = 'all'")
            rows = conn.execute("SELECT similarity FROM memory.search_hybrid('hw', %s, "
                                f"'[1,1,1]', 1000{by_words})", (body,)).fetchall()
            general = conn.execute(
                "SELECT coalesce(pg_stat_get_xact_function_calls('memory_private._hybrid_candidates("
                "memory_private.domains, text, vector, integer, jsonb, integer, text, boolean)'"
                "::regprocedure), 0) AS n").fetchone()["n"]
        waiting = sum(r["similarity"] is None for r in rows)
        assert len(rows) == 1000 and waiting == bound and general == 0, (len(rows), waiting)
        # and on the general path (a filter), 1,000 vector ids against the waiting rows
        rows = conn.execute("SELECT similarity FROM memory.search_hybrid('hw', %s, '[1,1,1]', "
                            f"1000, filter => '{{\"k\": {{\"$exists\": false}}}}'{by_words})",
                            (body,)).fetchall()
        assert len(rows) == 1000 and sum(r["similarity"] is None for r in rows) == bound
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="64"):
            conn.execute("SELECT * FROM memory.search_hybrid('hw', %s, '[1,1,1]', 5)",
                         (" ".join(words),))
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SELECT * FROM memory.search_hybrid('hw', 'qz1x', '[1,1,1]', 1001)")
    finally:
        conn.execute("RESET statement_timeout")


def test_search_syntax_and_filter_worst_inputs_are_bounded(conn):
    """Bounded cost of stop 23's parse and filter paths, worst inputs: a query of OR'ed phrases
    or of exclusions (every group and exclusion a tsquery node; at most 16 of them since stop
    28: 1,000 phrases of common words took 12.6 s at 100,000 rows, as many GIN items each checked
    against their OR, and are refused), a filter of $in at its 1,000 values (a containment test
    per value and row; 15,000 and more are refused since stop 28), and a filtered search_text
    whose word is in more rows than the per-word cap (a second search, bounded by the word's
    rows). Each well within a statement_timeout of 10 s."""
    conn.execute("SELECT memory.create_domain('sx', 3)")
    conn.execute("SELECT count(*) FROM memory.store_many('sx', "
                 "(SELECT array_agg('quick fox row' || g) FROM generate_series(1, 2000) AS g), "
                 "(SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 2000) AS g))")
    conn.execute("SELECT memory.refresh_text_stats('sx')")
    conn.execute("SET statement_timeout = '10s'")
    try:
        for n, ok in ((800, False), (16, True)):
            for q in (" OR ".join(['"quick fox"'] * n)[:10000],
                      " OR ".join(['-"quick fox"'] * n)[:10000],
                      " ".join(["-fox"] * n)[:10000]):
                sql = "SELECT count(*) FROM memory.search_text('sx', %s, 10)"
                if ok:
                    conn.execute(sql, (q,)).fetchone()
                else:
                    with pytest.raises(psycopg.errors.InvalidParameterValue,
                                       match="more than 16 quoted phrases and -exclusions"):
                        conn.execute(sql, (q,))
        values = list(range(1000))
        assert conn.execute("SELECT memory.count('sx', jsonb_build_object('n', "
                            "jsonb_build_object('$in', %s::jsonb))) AS n",
                            (json.dumps(values),)).fetchone()["n"] == 999
        rows = conn.execute("SELECT id FROM memory.search_text('sx', 'quick', 10, "
                            "'{\"n\": {\"$gt\": 1995}}')").fetchall()
        assert len(rows) == 5
    finally:
        conn.execute("RESET statement_timeout")


def test_a_text_fill_never_runs_the_tables_code(conn, roles):
    """A table adopted without indexes (its text index filled later, in batches) on which its
    owner then plants a trigger and a policy: neither fill_text_index nor run_maintenance's fill
    runs them (both check the table first; maintenance skips it with a WARNING)."""
    alice, alice_dsn = roles("memory_admin", prefix="alice")
    conn.execute(f'CREATE SCHEMA app AUTHORIZATION "{alice}"')
    a = connect_raw(alice_dsn)
    try:
        a.execute(f"CREATE TABLE app.docs (id bigint PRIMARY KEY, body text NOT NULL, emb vector({DIM}))")
        a.execute("INSERT INTO app.docs SELECT g, 'row ' || g, NULL FROM generate_series(1, 5) AS g")
        with trusting(conn, alice):  # (a table of hers is refused else: stop 26)
            a.execute("SELECT memory.adopt_table('docs', 'app.docs', 'id', 'body', 'emb', "
                      "create_indexes => false)")
        a.execute("CREATE TABLE app.ran (who text, what text)")
        a.execute("GRANT INSERT ON app.ran TO PUBLIC")
        a.execute("""CREATE FUNCTION app.evil_bool(x text) RETURNS boolean LANGUAGE plpgsql
            AS $$ BEGIN INSERT INTO app.ran VALUES (current_user, x); RETURN true; END $$""")
        a.execute("ALTER TABLE app.docs ENABLE ROW LEVEL SECURITY")
        a.execute("CREATE POLICY p ON app.docs USING (app.evil_bool('policy'))")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("SELECT memory.fill_text_index('docs', 10)")
        assert conn.execute("SELECT (memory.run_maintenance() ->> 'text_rows_filled')::int AS n"
                            ).fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM memory_data.docs_text").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM app.ran").fetchone()["n"] == 0
    finally:
        a.close()


def test_rewiring_a_partition_never_runs_its_code(conn, roles):
    """Stop 28: run_maintenance puts the domain's triggers on a partition attached after adoption
    (memory_private._wire_missing_all: LOCK of the table, CREATE TRIGGER on the partition). A
    partition its owner attached with her triggers, policy and a default calling her code: the
    rewiring runs none of it as pgmemo's owner, and the later steps refuse the table as before."""
    alice, alice_dsn = roles("memory_admin", prefix="alice")
    conn.execute(f'CREATE SCHEMA app AUTHORIZATION "{alice}"')
    a = connect_raw(alice_dsn)
    a.execute(f"CREATE TABLE app.pd (id bigint PRIMARY KEY, body text NOT NULL, emb vector({DIM})) "
              "PARTITION BY RANGE (id)")
    a.execute(f"CREATE TABLE app.pd_a PARTITION OF app.pd FOR VALUES FROM (0) TO (10)")
    with trusting(conn, alice):
        a.execute("SELECT memory.adopt_table('pd', 'app.pd', 'id', 'body', 'emb')")
    _plant_loggers(a)
    a.execute(f"CREATE TABLE app.pd_b (id bigint PRIMARY KEY, body text NOT NULL, emb vector({DIM}))")
    a.execute("CREATE TRIGGER ev_row BEFORE INSERT OR UPDATE OR DELETE ON app.pd_b "
              "FOR EACH ROW EXECUTE FUNCTION app.evil()")
    a.execute("CREATE TRIGGER ev_stmt AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON app.pd_b "
              "FOR EACH STATEMENT EXECUTE FUNCTION app.evil()")
    a.execute("ALTER TABLE app.pd_b ENABLE ROW LEVEL SECURITY")
    a.execute("CREATE POLICY p ON app.pd_b USING (app.evil_bool('policy')) "
              "WITH CHECK (app.evil_bool('check'))")
    a.execute("ALTER TABLE app.pd ATTACH PARTITION app.pd_b FOR VALUES FROM (10) TO (20)")
    out = conn.execute("SELECT memory.run_maintenance() AS r").fetchone()["r"]
    assert out["domains_rewired"] == 1
    assert out["relations_rewired"] == 1  # registered for the text fill, which refuses the table
    assert conn.execute("SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = 'app.pd_b'::regclass "
                        "AND tgname LIKE 'pgmemo_pd_%'").fetchone()["n"] > 0
    assert _ran(conn) == []
    a.close()


def test_truncate_only_never_reads_a_planted_child(conn, roles):
    """Stop 29: after a TRUNCATE ONLY of an adopted table with inheritance children, its text
    trigger (definer rights) reads the rows left to keep their index rows. A child whose owner
    planted a policy and triggers: the trigger runs none of it, keeps the index as it was (with
    a WARNING) and the TRUNCATE goes through."""
    alice, alice_dsn = roles("memory_admin", prefix="alice")
    conn.execute(f'CREATE SCHEMA app AUTHORIZATION "{alice}"')
    a = connect_raw(alice_dsn)
    a.execute(f"CREATE TABLE app.fam (id bigint PRIMARY KEY, body text NOT NULL, emb vector({DIM}))")
    a.execute("CREATE TABLE app.fam_kid () INHERITS (app.fam)")
    a.execute("INSERT INTO app.fam (id, body) VALUES (1, 'a parent walrus')")
    a.execute("INSERT INTO app.fam_kid (id, body) VALUES (2, 'a child walrus')")
    with trusting(conn, alice):
        a.execute("SELECT memory.adopt_table('fam', 'app.fam', 'id', 'body', 'emb')")
    _plant_loggers(a)
    a.execute("CREATE TRIGGER ev_stmt AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON app.fam_kid "
              "FOR EACH STATEMENT EXECUTE FUNCTION app.evil()")
    a.execute("ALTER TABLE app.fam_kid ENABLE ROW LEVEL SECURITY")
    a.execute("ALTER TABLE app.fam_kid FORCE ROW LEVEL SECURITY")
    a.execute("CREATE POLICY p ON app.fam_kid USING (app.evil_bool('policy'))")
    a.execute("TRUNCATE ONLY app.fam")
    assert _ran(conn) == []
    assert sorted(r["id"] for r in conn.execute("SELECT id FROM memory_data.fam_text")) == ["1", "2"]
    a.close()


@pytest.fixture
def adopted_by_alice(conn, roles):
    """_alice_adopts_docs with one row (stop 36's review)."""
    alice, a, _ = _alice_adopts_docs(conn, roles, "(1, 'first memory', NULL)")
    yield alice, a
    a.close()


@pytest.mark.parametrize("column", ["body", "id"])
def test_a_replaced_column_never_runs_its_cast_in_pgmemos_triggers(conn, adopted_by_alice, column):
    """The table's owner renames a mapped column away and adds one of that name, of a composite
    type of hers with a cast to text that is her function (it makes her a superuser when it runs
    with one's rights). pgmemo's definer triggers (text, enqueue) read the columns by name: her
    next INSERT is refused, naming the column, and her cast never runs as pgmemo's owner. For the
    id column the text index's triggers are disabled first (she may: her table), so that the
    enqueue trigger is the one reached."""
    alice, a = adopted_by_alice
    a.execute("CREATE TYPE app.t AS (v text)")
    a.execute("""CREATE FUNCTION app.t_text(x app.t) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO app.ran VALUES (current_user, 'cast');
            IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('ALTER ROLE %I SUPERUSER', (SELECT relowner::regrole::text
                    FROM pg_class WHERE oid = 'app.docs'::regclass));
            END IF;
            RETURN x.v;
        END $$""")
    a.execute("CREATE CAST (app.t AS text) WITH FUNCTION app.t_text(app.t)")
    if column == "id":
        for tg in ("text_insert", "text_update", "text_delete"):
            a.execute(f"ALTER TABLE app.docs DISABLE TRIGGER pgmemo_docs_{tg}")
    a.execute(f"ALTER TABLE app.docs RENAME COLUMN {column} TO {column}_old")
    a.execute(f"ALTER TABLE app.docs ADD COLUMN {column} app.t")
    insert = {"body": "INSERT INTO app.docs (id, body_old, body) VALUES (7, 'x', ROW('hello'))",
              "id": "INSERT INTO app.docs (id_old, body, id) VALUES (7, 'x', ROW('7'))"}[column]
    with pytest.raises(psycopg.errors.DatatypeMismatch, match=f'domain "docs".*{column}'):
        a.execute(insert)
    assert not _is_super(conn, alice), "the table's owner made herself a superuser"
    assert conn.execute("SELECT who, what FROM app.ran").fetchall() == []
    # her own writes go on once the column is given back
    a.execute(f"ALTER TABLE app.docs DROP COLUMN {column}")
    a.execute(f"ALTER TABLE app.docs RENAME COLUMN {column}_old TO {column}")
    a.execute("INSERT INTO app.docs (id, body) VALUES (8, 'eighth memory')")


def _restricted_reader(conn, roles):
    """A reader (memory_reader, no grant on domain secret) whose own table mal.t has an index
    expression that calls memory.search_text('secret', ...) and logs in mal.loot what it got, or
    the error it met (stop 36's attack review)."""
    conn.execute("SELECT memory.create_domain('secret', 3)")
    conn.execute("SELECT memory.store('secret', 'the launch codes are 1234')")
    for role in ("memory_reader", "memory_worker"):
        conn.execute(f"SELECT memory.revoke_domain('secret', '{role}', 'read')")
    mallory, mallory_dsn = roles("memory_reader", prefix="mallory")
    conn.execute(f'CREATE SCHEMA mal AUTHORIZATION "{mallory}"')
    m = connect_raw(mallory_dsn)
    with pytest.raises(REFUSED):
        m.execute("SELECT * FROM memory.search_text('secret', 'launch')").fetchall()
    m.execute("CREATE TABLE mal.loot (who text, got text, error text)")
    m.execute("""CREATE FUNCTION mal.grab() RETURNS integer LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO mal.loot SELECT current_user, s.content, NULL
            FROM memory.search_text('secret', 'launch') AS s;
            RETURN 1;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO mal.loot VALUES (current_user, NULL, SQLERRM);
            RETURN 0;
        END $$""")
    m.execute("""CREATE FUNCTION mal.g(x integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE
        AS $$ BEGIN RETURN x + mal.grab(); END $$""")
    return m


def test_a_security_restricted_operation_never_reads_as_the_session(conn, roles):
    """A superuser's ANALYZE of the reader's table runs her index function as her, in the
    superuser's session: pgmemo, which checks the session's role (_caller), refuses to run
    there at all (UNLISTEN's own refusal, _refuse_restricted), instead of handing her the domain."""
    m = _restricted_reader(conn, roles)
    try:
        m.execute("CREATE TABLE mal.t (x integer)")
        m.execute("INSERT INTO mal.t SELECT generate_series(1, 10)")
        m.execute("CREATE INDEX ON mal.t (mal.g(x))")
        m.execute("TRUNCATE mal.loot")
        conn.execute("ANALYZE mal.t")  # routine maintenance by a superuser
        loot = conn.execute("SELECT who, got, error FROM mal.loot").fetchall()
        assert loot, "the index expression never ran"
        assert all(r["got"] is None and "security-restricted operation" in r["error"]
                   for r in loot), loot
    finally:
        m.close()


def test_autovacuum_never_reads_a_domain_for_an_index_function(conn, roles):
    """The same with nobody's action: autovacuum's analyze of the reader's table (its session
    user the bootstrap superuser) runs her index function, and pgmemo refuses it. (Server
    settings made short so that autovacuum comes within seconds; reset after.)"""
    m = _restricted_reader(conn, roles)
    conn.execute("ALTER SYSTEM SET autovacuum_naptime = 1")
    conn.execute("SELECT pg_reload_conf()")
    try:
        m.execute("CREATE TABLE mal.t (x integer) WITH (autovacuum_analyze_threshold = 1, "
                  "autovacuum_analyze_scale_factor = 0, autovacuum_vacuum_threshold = 1000000)")
        m.execute("CREATE INDEX ON mal.t (mal.g(x))")
        m.execute("TRUNCATE mal.loot")
        m.execute("INSERT INTO mal.t SELECT generate_series(1, 50)")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not one(
                conn, "SELECT last_autoanalyze IS NOT NULL FROM pg_stat_user_tables "
                      "WHERE relid = 'mal.t'::regclass"):
            time.sleep(0.2)
            conn.execute("SELECT pg_stat_clear_snapshot()")
        # (her own INSERT ran the expression too, in her session: refused as herself)
        loot = conn.execute("SELECT who, got, error FROM mal.loot").fetchall()
        assert [r for r in loot if r["got"] is not None] == []
        assert any("security-restricted operation" in r["error"] for r in loot), \
            f"autovacuum never ran the index expression: {loot}"
    finally:
        m.close()
        conn.execute("ALTER SYSTEM RESET autovacuum_naptime")
        conn.execute("SELECT pg_reload_conf()")


def test_a_restricted_operation_never_adopts_a_table_its_code_may_not_read(conn, roles):
    """A memory_admin that may not read hr.notes has a superuser's REINDEX run her index function,
    which calls memory.adopt_table on it (by OID): refused, and the table stays unadopted."""
    conn.execute("CREATE SCHEMA hr")
    conn.execute("CREATE TABLE hr.notes (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3))")
    conn.execute("INSERT INTO hr.notes VALUES (1, 'salary of the CEO', NULL)")
    alice, alice_dsn = roles("memory_admin", prefix="alice")
    conn.execute(f'CREATE SCHEMA mal AUTHORIZATION "{alice}"')
    a = connect_raw(alice_dsn)
    try:
        with pytest.raises(REFUSED):
            a.execute("SELECT memory.adopt_table('hr', 'hr.notes', 'id', 'body', 'emb')")
        a.execute("CREATE TABLE mal.tried (error text)")
        a.execute("""CREATE FUNCTION mal.grab() RETURNS integer LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM memory.adopt_table('hr', (SELECT c.oid FROM pg_class AS c
                    WHERE c.relname = 'notes' AND c.relnamespace =
                        (SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = 'hr'))::regclass,
                    'id', 'body', 'emb', create_indexes => false);
                RETURN 1;
            EXCEPTION WHEN OTHERS THEN
                INSERT INTO mal.tried VALUES (SQLERRM);
                RETURN 0;
            END $$""")
        a.execute("""CREATE FUNCTION mal.g(x integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE
            AS $$ BEGIN RETURN x + mal.grab(); END $$""")
        a.execute("CREATE TABLE mal.t (x integer)")
        a.execute("INSERT INTO mal.t VALUES (1)")
        a.execute("CREATE INDEX ON mal.t (mal.g(x))")
        a.execute("TRUNCATE mal.tried")
        conn.execute("REINDEX TABLE mal.t")  # a DBA's REINDEX DATABASE reaches it too
        tried = [r["error"] for r in conn.execute("SELECT error FROM mal.tried")]
        assert tried and all("security-restricted operation" in e for e in tried), tried
        assert one(conn, "SELECT count(*) FROM memory_private.domains WHERE domain = 'hr'") == 0
    finally:
        a.close()
