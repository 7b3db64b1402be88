"""Trust (issue 11): pgmemo's definer rights never run code another role controls, adoption
checks the caller, per-domain access, and names that need quoting. Attacks are driven for real
from login roles on separate connections (docs/SECURITY.md names these tests)."""

from __future__ import annotations

import itertools
import os
import threading

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from helpers import _pgmemo_owner, trusting, wait_for_lock_wait
from pgmemo.client import as_vector, connect_raw

_n = itertools.count()
DIM = 3


def _connect(dsn: str) -> psycopg.Connection:
    return connect_raw(dsn)


def _is_super(conn, name: str) -> bool:
    return conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (name,)).fetchone()["rolsuper"]


@pytest.fixture
def adopted(conn, roles):
    """A table owned by `alice` (memory_admin), adopted as domain docs, one row; `bob` is a plain
    memory_writer. alice then plays the attacker: she owns the table, not pgmemo."""
    alice, alice_dsn = roles("memory_admin", prefix="alice")
    bob, bob_dsn = roles("memory_writer", prefix="bob")
    conn.execute(f'CREATE SCHEMA app AUTHORIZATION "{alice}"')
    a = _connect(alice_dsn)
    a.execute(f"CREATE TABLE app.docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
              f"body text NOT NULL, emb vector({DIM}))")
    a.execute("INSERT INTO app.docs (body) VALUES ('first memory')")
    # (a table of a role pgmemo does not trust is refused: stop 26. She adopts it while a member
    # of pgmemo's owner, then is not one any more: her table is then refused for every call, and
    # each test shows what it is refused for first, and that nothing of hers ran)
    with trusting(conn, alice):
        a.execute("SELECT memory.adopt_table('docs', 'app.docs', 'id', 'body', 'emb')")
    # the attacker's log: who ran her code
    a.execute("CREATE TABLE app.ran (who text, what text)")
    a.execute("GRANT INSERT ON app.ran TO PUBLIC")
    a.execute("""CREATE FUNCTION app.evil() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO app.ran VALUES (current_user, TG_NAME);
            IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('ALTER ROLE %I SUPERUSER', (SELECT relowner::regrole::text
                    FROM pg_class WHERE oid = 'app.docs'::regclass));
            END IF;
            RETURN NEW;
        END $$""")
    a.execute("""CREATE FUNCTION app.evil_bool(x text) RETURNS boolean LANGUAGE plpgsql
        IMMUTABLE AS $$ BEGIN INSERT INTO app.ran VALUES (current_user, x); RETURN true; END $$""")
    a.execute("GRANT USAGE ON SCHEMA app TO PUBLIC")
    yield dict(alice=alice, a=a, bob=bob, b=_connect(bob_dsn), alice_dsn=alice_dsn, bob_dsn=bob_dsn)
    a.close()


def _ran(conn) -> list[tuple]:
    return [(r["who"], r["what"]) for r in conn.execute("SELECT who, what FROM app.ran").fetchall()]


def test_table_owner_trigger_never_runs_with_pgmemo_rights(conn, adopted):
    """Issue 11, 1st attack: a BEFORE UPDATE trigger added after adoption, then memory.update by a
    plain writer. On the landed main it ran as pgmemo's owner and made the table owner SUPERUSER."""
    a, b = adopted["a"], adopted["b"]
    a.execute("CREATE TRIGGER t BEFORE UPDATE ON app.docs FOR EACH ROW EXECUTE FUNCTION app.evil()")
    row_id = conn.execute("SELECT id FROM memory_data.docs_memories").fetchone()["id"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r'trigger t on app.docs calls'):
        b.execute("SELECT memory.update('docs', %s, content => 'changed')", (row_id,))
    for call, args in [
        ("SELECT memory.store('docs', 'x')", ()),
        ("SELECT * FROM memory.store_many('docs', ARRAY['x', 'y'])", ()),
        ("SELECT memory.forget('docs', %s)", (row_id,)),
    ]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            b.execute(call, args)
    assert _ran(conn) == []
    assert not _is_super(conn, adopted["alice"])
    # the application's own writes are untouched (its trigger runs as itself)
    a.execute("UPDATE app.docs SET body = 'mine'")
    assert _ran(conn) == [(adopted["alice"], "t")]
    # (stop 26: a table of a role pgmemo does not trust is refused for every call, reads too;
    # handed to pgmemo's owner, only the trigger is left to refuse it)
    conn.execute("ALTER TABLE app.docs OWNER TO CURRENT_USER")
    # the worker path: completing writes the table -> that job fails alone, nothing runs
    jobs = conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'docs')").fetchall()
    assert jobs
    done = conn.execute("SELECT memory.complete_embedding_jobs(%s, %s)",
                        ([j["job_id"] for j in jobs], [as_vector([1.0, 0.0, 0.0])] * len(jobs))).fetchone()
    assert list(done.values())[0] == 0
    assert _ran(conn) == [(adopted["alice"], "t")]
    # diagnose says why
    found = conn.execute("SELECT * FROM memory.diagnose('docs') WHERE check_name = "
                         "'adopted_table_runs_foreign_code'").fetchall()
    assert found and found[0]["severity"] == "error" and "trigger t" in found[0]["detail"]
    # disabling it makes the domain usable again
    conn.execute("ALTER TABLE app.docs DISABLE TRIGGER t")
    assert b.execute("SELECT memory.update('docs', %s, content => 'changed')", (row_id,)).fetchone()


def test_adoption_refuses_tables_that_run_foreign_code(conn, adopted, roles):
    a = adopted["a"]
    cases = {
        "trigger": "CREATE TRIGGER t2 AFTER INSERT ON app.t FOR EACH STATEMENT EXECUTE FUNCTION app.evil()",
        "rule": "CREATE RULE r AS ON UPDATE TO app.t DO ALSO INSERT INTO app.ran VALUES ('rule', 'r')",
        "row-level security": "ALTER TABLE app.t ENABLE ROW LEVEL SECURITY",
        "default": "ALTER TABLE app.t ALTER COLUMN tag SET DEFAULT app.evil_bool('default')::text",
        "check": "ALTER TABLE app.t ADD CONSTRAINT c CHECK (app.evil_bool(body))",
        "index": "CREATE INDEX ON app.t ((app.evil_bool(body)))",
        "generated": "ALTER TABLE app.t ADD COLUMN g boolean GENERATED ALWAYS AS (app.evil_bool(body)) STORED",
        "domain type": "CREATE DOMAIN app.d AS text CHECK (app.evil_bool(VALUE)); "
                       "ALTER TABLE app.t ADD COLUMN dd app.d",
        # (a NULL default is checked against the domain's constraints on every INSERT)
        "domain over a domain": "CREATE DOMAIN app.d AS text CHECK (app.evil_bool(VALUE)); "
                                "CREATE DOMAIN app.d2 AS app.d; CREATE DOMAIN app.d3 AS app.d2[]; "
                                "CREATE DOMAIN app.d4 AS app.d3; ALTER TABLE app.t ADD COLUMN dd app.d4",
        # stop 26 (an attack review): a domain of hers, even with no code now, since its default
        # (run by pgmemo's INSERT) and constraints change without a lock on the table
        "domain default": "CREATE DOMAIN app.d AS text; ALTER TABLE app.t ADD COLUMN dd app.d; "
                          "ALTER DOMAIN app.d SET DEFAULT app.evil_bool('default')::text",
        "domain without code": "CREATE DOMAIN app.d AS text; ALTER TABLE app.t ADD COLUMN dd app.d",
        "domain in a composite": "CREATE DOMAIN app.d AS text; CREATE TYPE app.c AS (x app.d); "
                                 "ALTER TABLE app.t ADD COLUMN cc app.c[]",
        # a range's subtype_diff, called by every insertion into a GiST index on it
        "range subtype_diff": "CREATE FUNCTION app.diff(x float8, y float8) RETURNS float8 "
                              "LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM app.evil_bool('diff'); "
                              "RETURN x - y; END $$; "
                              "CREATE TYPE app.fr AS RANGE (subtype = float8, subtype_diff = app.diff); "
                              "ALTER TABLE app.t ADD COLUMN span app.fr; "
                              "CREATE INDEX ON app.t USING gist (span)",
        # built-ins that run the query they are given, or change pgmemo's settings
        "ts_rewrite check": "ALTER TABLE app.t ADD CONSTRAINT c CHECK (ts_rewrite('a'::tsquery, "
                            "'SELECT ''b''::tsquery, ''c''::tsquery WHERE app.evil_bool(''x'')') "
                            "IS NOT NULL) NOT VALID",
        "query_to_xml default": "ALTER TABLE app.t ALTER COLUMN tag SET DEFAULT "
                                "query_to_xml('SELECT app.evil_bool(''x'')', true, false, '')::text",
        "table_to_xml default": "ALTER TABLE app.t ALTER COLUMN tag SET DEFAULT "
                                "table_to_xml('app.ran', true, false, '')::text",
        "set_config default": "ALTER TABLE app.t ALTER COLUMN tag SET DEFAULT "
                              "set_config('search_path', 'app, pg_catalog', true)",
        # a cast to a domain of hers inside an expression runs its constraints, which she can
        # change at any time (ADD CONSTRAINT ... NOT VALID locks no table)
        "cast to her domain": "CREATE DOMAIN app.d AS text; ALTER TABLE app.t ADD CONSTRAINT c "
                              "CHECK ((body::app.d) IS NOT NULL)",
        # stop 26's second attack review
        "trigger WHEN clause": "CREATE TRIGGER tw BEFORE UPDATE ON app.t FOR EACH ROW "
                               "WHEN (app.evil_bool('when')) EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "pg_input_is_valid": "CREATE DOMAIN app.d AS text CHECK (app.evil_bool(VALUE)); ALTER TABLE app.t "
                             "ADD CONSTRAINT c CHECK (pg_input_is_valid(body, 'app.d')) NOT VALID",
        "cast to an array of her domain": "CREATE DOMAIN app.d AS text; ALTER TABLE app.t ADD CONSTRAINT c "
                                          "CHECK ((('{' || md5(body) || '}')::app.d[]) IS NOT NULL) NOT VALID",
        "expression index of her range": "CREATE FUNCTION app.diff(x float8, y float8) RETURNS float8 "
                                         "LANGUAGE sql IMMUTABLE AS $$ SELECT x - y $$; "
                                         "CREATE TYPE app.fr AS RANGE (subtype = float8, subtype_diff = app.diff); "
                                         "CREATE INDEX ON app.t USING gist ((CASE WHEN body < 'm' "
                                         "THEN '[1,2)'::app.fr ELSE '[5,9)'::app.fr END))",
        "statistics expression": "CREATE STATISTICS app.st ON (app.evil_bool('stats')), (length(body)) FROM app.t",
    }
    for what, ddl in cases.items():
        a.execute("DROP TABLE IF EXISTS app.t CASCADE; DROP TYPE IF EXISTS app.c CASCADE; "
                  "DROP DOMAIN IF EXISTS app.d CASCADE; DROP TYPE IF EXISTS app.fr CASCADE; "
                  "DROP FUNCTION IF EXISTS app.diff(float8, float8) CASCADE; "
                  "DROP STATISTICS IF EXISTS app.st")
        a.execute(f"CREATE TABLE app.t (id text PRIMARY KEY, body text NOT NULL, tag text, emb vector({DIM}))")
        a.execute(ddl)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="pgmemo will not touch") as e:
            a.execute("SELECT memory.adopt_table('t', 'app.t', 'id', 'body', 'emb')")
        # (refused for what the case adds, before the table's owner: stop 26)
        assert "a role pgmemo does not trust" not in str(e.value), (what, str(e.value))
    assert conn.execute("SELECT count(*) AS n FROM memory_private.domains WHERE domain = 't'").fetchone()["n"] == 0
    # pgmemo's owner's (or a superuser's) own code is fine: built-ins, or a function it owns
    a.execute("DROP TABLE IF EXISTS app.t CASCADE")
    conn.execute("CREATE DOMAIN public.nonempty AS text CHECK (VALUE <> '')")
    a.execute("CREATE TYPE app.mood AS ENUM ('calm', 'busy')")
    a.execute(f"CREATE TABLE app.t (id text PRIMARY KEY DEFAULT gen_random_uuid()::text, body text NOT NULL "
              f"CHECK (length(body) < 100000), emb vector({DIM}), n bigserial, "
              f"at timestamptz DEFAULT clock_timestamp(), r float8 DEFAULT random(), "
              f"mood app.mood DEFAULT 'calm', label public.nonempty DEFAULT 'x')")
    conn.execute("CREATE FUNCTION public.trusted_touch() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$ BEGIN RETURN NEW; END $$")
    a.execute("CREATE TRIGGER ok BEFORE UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION public.trusted_touch()")
    # her table is refused as hers (stop 26), accepted once pgmemo's owner owns it
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="a role pgmemo does not trust"):
        a.execute("SELECT memory.adopt_table('t', 'app.t', 'id', 'body', 'emb')")
    conn.execute("ALTER TABLE app.t OWNER TO CURRENT_USER")
    conn.execute("ALTER SEQUENCE app.t_n_seq OWNER TO CURRENT_USER")
    conn.execute("SELECT memory.adopt_table('t', 'app.t', 'id', 'body', 'emb')")
    conn.execute("SELECT memory.grant_domain('t', %s, 'write')", (adopted["bob"],))
    assert adopted["b"].execute("SELECT memory.store('t', 'fine')").fetchone()
    conn.execute("DROP FUNCTION public.trusted_touch() CASCADE")
    assert _ran(conn) == []


def test_expressions_the_planner_folds_never_run_with_pgmemo_rights(conn, adopted):
    """Stop 26's second attack review: planning a read folds the expressions of indexes, partial
    indexes' predicates and extended statistics, so an IMMUTABLE function of the table owner's
    with constant arguments ran in a plain reader's memory.get as pgmemo's owner. Reads now refuse
    such a table (and the write check examines statistics objects)."""
    a, b = adopted["a"], adopted["b"]
    a.execute("""CREATE FUNCTION app.log(x text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS
        $$ BEGIN INSERT INTO app.ran VALUES (current_user, x); RETURN true; END $$""")
    a.execute("""CREATE FUNCTION app.folded(x text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
        $$ BEGIN RETURN app.log(x); END $$""")
    for ddl, undo in [
        ("CREATE INDEX docs_x ON app.docs ((body IS NOT NULL AND app.folded('index')))",
         "DROP INDEX app.docs_x"),
        ("CREATE INDEX docs_p ON app.docs (id) WHERE app.folded('predicate')", "DROP INDEX app.docs_p"),
        ("CREATE STATISTICS app.docs_st ON (body IS NOT NULL AND app.folded('stats')), (id + 1) "
         "FROM app.docs", "DROP STATISTICS app.docs_st"),
    ]:
        a.execute(ddl)
        for call in ["SELECT * FROM memory.get('docs', '1')",
                     "SELECT * FROM memory.search_text('docs', 'memory')",
                     "SELECT memory.store('docs', 'hello')"]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="pgmemo will not touch") as e:
                b.execute(call)
            assert "a role pgmemo does not trust" not in str(e.value), str(e.value)
        assert [w for w, _ in _ran(conn) if w != adopted["alice"]] == []
        assert not _is_super(conn, adopted["alice"])
        a.execute(undo)
    conn.execute("ALTER TABLE app.docs OWNER TO CURRENT_USER")  # (hers: refused, stop 26)
    assert b.execute("SELECT * FROM memory.get('docs', '1')").fetchone()


def test_third_review_paths_are_refused(conn, adopted):
    """Stop 26's third attack review, on a table pgmemo's owner owns: a role with the TRIGGER
    privilege calling a type's input function by oid in a WHEN clause (domain_in runs her
    domain's CHECK); the table's own CHECK calling her function, which a read folds when a session
    sets constraint_exclusion = on; and a membership of pgmemo's owner that gives no privilege
    (WITH INHERIT FALSE, SET FALSE), counted as trust before."""
    a, b, alice = adopted["a"], adopted["b"], adopted["alice"]
    conn.execute("ALTER TABLE app.docs OWNER TO CURRENT_USER")
    conn.execute(f'GRANT TRIGGER ON app.docs TO "{alice}"')
    a.execute("CREATE DOMAIN app.d AS text CHECK (app.evil_bool(VALUE))")
    oid = a.execute("SELECT 'app.d'::regtype::oid AS o").fetchone()["o"]
    a.execute(f"CREATE TRIGGER tw BEFORE UPDATE ON app.docs FOR EACH ROW "
              f"WHEN (domain_in(NEW.body::cstring, {oid}::oid, -1) IS NULL) "
              f"EXECUTE FUNCTION suppress_redundant_updates_trigger()")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="input or support function"):
        b.execute("SELECT memory.store('docs', 'hello')")
    conn.execute("DROP TRIGGER tw ON app.docs")
    assert b.execute("SELECT memory.store('docs', 'hello')").fetchone()
    a.execute("CREATE FUNCTION app.ok(x text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT true $$")
    conn.execute("ALTER TABLE app.docs ADD CONSTRAINT c CHECK (app.ok(body)) NOT VALID")
    for call in ["SET constraint_exclusion = on; SELECT * FROM memory.get('docs', '1')",
                 "SELECT memory.store('docs', 'hello')"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="constraint c on app.docs calls app.ok"):
            b.execute(call)
    b.execute("RESET constraint_exclusion")
    conn.execute("ALTER TABLE app.docs DROP CONSTRAINT c")
    assert b.execute("SELECT * FROM memory.get('docs', '1')").fetchone()
    # a membership without privileges is no trust
    a.execute("CREATE TABLE app.mine (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3))")
    conn.execute(f'GRANT "{_pgmemo_owner(conn)}" TO "{alice}" WITH INHERIT FALSE, SET FALSE')
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="a role pgmemo does not trust"):
            a.execute("SELECT memory.adopt_table('mine', 'app.mine', 'id', 'body', 'emb')")
    finally:
        conn.execute(f'REVOKE "{_pgmemo_owner(conn)}" FROM "{alice}"')
    assert _ran(conn) == []
    assert not _is_super(conn, alice)


def test_query_running_builtins_never_run_with_pgmemo_rights(conn, adopted):
    """Stop 26's attack review: code checked by owner alone let built-ins owned by the bootstrap
    superuser run alice's code (ts_rewrite runs the query it is given); a domain of hers runs its
    default on pgmemo's INSERT. Added after adoption, a plain writer's store is refused, nothing
    of hers runs, and she stays what she was."""
    a, b = adopted["a"], adopted["b"]
    for ddl, undo in [
        ("ALTER TABLE app.docs ADD CONSTRAINT c CHECK (ts_rewrite('a'::tsquery, "
         "'SELECT ''b''::tsquery, ''c''::tsquery WHERE app.evil_bool(''check'')') IS NOT NULL) NOT VALID",
         "ALTER TABLE app.docs DROP CONSTRAINT c"),
        ("CREATE DOMAIN app.d AS text; ALTER TABLE app.docs ADD COLUMN dd app.d; "
         "ALTER DOMAIN app.d SET DEFAULT app.evil_bool('domain default')::text",
         "ALTER TABLE app.docs DROP COLUMN dd; DROP DOMAIN app.d"),
    ]:
        a.execute(ddl)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="pgmemo will not touch") as e:
            b.execute("SELECT memory.store('docs', 'hello')")
        assert "a role pgmemo does not trust" not in str(e.value), str(e.value)
        found = conn.execute("SELECT * FROM memory.diagnose('docs') WHERE check_name = "
                             "'adopted_table_runs_foreign_code'").fetchall()
        assert found and found[0]["severity"] == "error"
        assert _ran(conn) == []
        assert not _is_super(conn, adopted["alice"])
        a.execute(undo)
    conn.execute("ALTER TABLE app.docs OWNER TO CURRENT_USER")  # (hers: refused, stop 26)
    assert b.execute("SELECT memory.store('docs', 'hello')").fetchone()


def test_rls_policy_never_runs_with_pgmemo_rights(conn, adopted):
    """Row-level security enabled after adoption: reads (get, search_text, the views) refuse the
    table instead of running the policy as pgmemo's owner."""
    a, b = adopted["a"], adopted["b"]
    a.execute("ALTER TABLE app.docs ENABLE ROW LEVEL SECURITY")
    a.execute("CREATE POLICY p ON app.docs USING (app.evil_bool('policy'))")
    for call in ["SELECT * FROM memory.get('docs', '1')",
                 "SELECT * FROM memory.get_many('docs', ARRAY['1'])",
                 "SELECT * FROM memory.search_text('docs', 'memory')",
                 "SELECT * FROM memory.search('docs', '[1,0,0]')",
                 "SELECT * FROM memory.search_hybrid('docs', 'memory', '[1,0,0]')",
                 "SELECT * FROM memory.explain_search('docs')"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            b.execute(call)
    # the views do not fail for everyone: the unsafe domain's counts are NULL
    row = b.execute("SELECT rows FROM memory.domains WHERE domain = 'docs'").fetchone()
    assert row["rows"] is None
    row = b.execute("SELECT total_rows FROM memory.embedding_coverage WHERE domain = 'docs'").fetchone()
    assert row["total_rows"] is None
    # maintenance (the sweep over every domain) skips it instead of failing for all domains
    conn.execute("SELECT memory.run_maintenance()")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT memory.enqueue_missing('docs')")
    assert _ran(conn) == []
    # FORCE without ENABLE counts too
    a.execute("ALTER TABLE app.docs DISABLE ROW LEVEL SECURITY")
    a.execute("ALTER TABLE app.docs FORCE ROW LEVEL SECURITY")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        b.execute("SELECT * FROM memory.get('docs', '1')")
    # a worker's claim skips that domain's jobs instead of failing (or reading the table)
    assert [j for j in conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w')").fetchall()
            if j["domain"] == "docs"] == []
    # releasing the table always works (it runs none of the table's code)
    conn.execute("SELECT memory.drop_domain('docs')")
    assert _ran(conn) == []


def test_partition_and_child_added_after_adoption_are_checked(conn, roles):
    alice, alice_dsn = roles("memory_admin", prefix="alice")
    conn.execute(f'CREATE SCHEMA app AUTHORIZATION "{alice}"')
    a = _connect(alice_dsn)
    a.execute("CREATE TABLE app.ran (who text, what text)")
    a.execute("""CREATE FUNCTION app.evil() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO app.ran VALUES (current_user, TG_NAME); RETURN NEW; END $$""")
    a.execute(f"CREATE TABLE app.p (id text, k int NOT NULL DEFAULT 1, body text NOT NULL, "
              f"emb vector({DIM}), PRIMARY KEY (id)) PARTITION BY LIST (id)")
    a.execute("CREATE TABLE app.p_a PARTITION OF app.p FOR VALUES IN ('a')")
    # (a table of a role pgmemo does not trust is refused: stop 26; pgmemo's owner owns these)
    conn.execute("ALTER TABLE app.p OWNER TO CURRENT_USER")
    conn.execute("ALTER TABLE app.p_a OWNER TO CURRENT_USER")
    conn.execute("SELECT memory.adopt_table('p', 'app.p', 'id', 'body', 'emb', create_indexes => false)")
    conn.execute("SELECT memory.store('p', 'ok', id => 'a')")
    # (a partition clones pgmemo's row trigger, whose function only pgmemo's owner may execute)
    conn.execute("CREATE TABLE app.p_b PARTITION OF app.p FOR VALUES IN ('b')")
    conn.execute(f'ALTER TABLE app.p_b OWNER TO "{alice}"')
    a.execute("CREATE TRIGGER t BEFORE INSERT ON app.p_b FOR EACH ROW EXECUTE FUNCTION app.evil()")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="app.p_b"):
        conn.execute("SELECT memory.store('p', 'evil', id => 'b')")
    # an inheritance child of a plain table: an UPDATE through pgmemo reaches its rows too
    a.execute(f"CREATE TABLE app.h (id text PRIMARY KEY, body text NOT NULL, emb vector({DIM}))")
    conn.execute("ALTER TABLE app.h OWNER TO CURRENT_USER")
    conn.execute("SELECT memory.adopt_table('h', 'app.h', 'id', 'body', 'emb', create_indexes => false)")
    conn.execute("CREATE TABLE app.h_child () INHERITS (app.h)")
    conn.execute(f'ALTER TABLE app.h_child OWNER TO "{alice}"')
    a.execute("CREATE TRIGGER t BEFORE UPDATE ON app.h_child FOR EACH ROW EXECUTE FUNCTION app.evil()")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="app.h_child"):
        conn.execute("SELECT memory.update('h', 'x', content => 'y')")
    assert conn.execute("SELECT count(*) AS n FROM app.ran").fetchone()["n"] == 0
    a.close()


def test_trigger_added_while_a_call_waits_is_seen(conn, adopted):
    """The check comes after the table's lock: the owner holds the table, a writer's update
    waits, the owner adds a trigger and commits; the update then sees the trigger and refuses
    (instead of running it as pgmemo's owner)."""
    a, b = adopted["a"], adopted["b"]
    holder = psycopg.connect(adopted["alice_dsn"])  # not autocommit: one transaction
    holder.execute("LOCK TABLE app.docs IN ACCESS EXCLUSIVE MODE")
    bob_pid = b.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]
    result: dict = {}

    def bob_updates():
        try:
            b.execute("SELECT memory.update('docs', '1', content => 'changed')")
            result["ok"] = True
        except psycopg.Error as exc:
            result["error"] = exc

    t = threading.Thread(target=bob_updates)
    t.start()
    wait_for_lock_wait(conn, bob_pid)
    holder.execute("CREATE TRIGGER late BEFORE UPDATE ON app.docs FOR EACH ROW EXECUTE FUNCTION app.evil()")
    holder.commit()
    t.join(30)
    holder.close()
    assert isinstance(result.get("error"), psycopg.errors.InsufficientPrivilege), result
    assert _ran(conn) == []
    assert not _is_super(conn, adopted["alice"])


def test_adopt_requires_the_caller_to_own_the_table(conn, roles):
    """Issue 11: a memory_admin that cannot SELECT public.hr_secrets adopted it and read it
    through get_many; by OID it worked without USAGE on the schema."""
    mallory, mallory_dsn = roles("memory_admin", prefix="mallory")
    conn.execute("CREATE SCHEMA hr")
    conn.execute(f"CREATE TABLE hr.secrets (id text PRIMARY KEY, body text NOT NULL, emb vector({DIM}))")
    conn.execute("INSERT INTO hr.secrets VALUES ('1', 'salary of the CEO', NULL)")
    oid = conn.execute("SELECT 'hr.secrets'::regclass::oid AS o").fetchone()["o"]
    m = _connect(mallory_dsn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only the owner"):
        m.execute("SELECT memory.adopt_table('hr', %s::oid::regclass, 'id', 'body', 'emb')", (oid,))
    conn.execute("GRANT USAGE ON SCHEMA hr TO PUBLIC")
    conn.execute("GRANT SELECT ON hr.secrets TO PUBLIC")  # even a reader of it is not its owner
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only the owner"):
        m.execute("SELECT memory.adopt_table('hr', 'hr.secrets', 'id', 'body', 'emb')")
    # a member of the owning role may adopt it
    conn.execute(f'ALTER TABLE hr.secrets OWNER TO "{mallory}"')
    other, other_dsn = roles("memory_admin", prefix="other")
    conn.execute(f'GRANT "{mallory}" TO "{other}"')
    o = _connect(other_dsn)
    # (and its owner must be a role pgmemo trusts: stop 26)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="a role pgmemo does not trust"):
        o.execute("SELECT memory.adopt_table('hr', 'hr.secrets', 'id', 'body', 'emb')")
    conn.execute(f'GRANT "{_pgmemo_owner(conn)}" TO "{mallory}"')
    o.execute("SELECT memory.adopt_table('hr', 'hr.secrets', 'id', 'body', 'emb')")
    assert o.execute("SELECT count(*) AS n FROM memory.get_many('hr', ARRAY['1'])").fetchone()["n"] == 1
    m.close()
    o.close()
    conn.execute(f'REVOKE "{_pgmemo_owner(conn)}" FROM "{mallory}"')
    conn.execute("DROP SCHEMA hr CASCADE")


PLANTS = """
CREATE TABLE extensions.ran (who text, what text);
GRANT INSERT, SELECT ON extensions.ran TO PUBLIC;
CREATE FUNCTION extensions.format(f text, a name, b name) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'format(text, name, name)');
    RETURN pg_catalog.format(f, a, b); END $$;
CREATE FUNCTION extensions.unnest(a text[]) RETURNS SETOF text LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'unnest(text[])');
    RETURN QUERY SELECT pg_catalog.unnest(a); END $$;
CREATE FUNCTION extensions.array_fill(v real, d integer[]) RETURNS real[] LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'array_fill(real, integer[])');
    RETURN pg_catalog.array_fill(v, d); END $$;
CREATE FUNCTION extensions.cardinality(a text[]) RETURNS integer LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'cardinality(text[])');
    RETURN pg_catalog.cardinality(a); END $$;
CREATE FUNCTION extensions.pg_column_size(v extensions.vector) RETURNS integer LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'pg_column_size(vector)');
    RETURN pg_catalog.pg_column_size(v); END $$;
CREATE FUNCTION extensions.regexp_replace(a text, b text, c text, d text) RETURNS text
    LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'regexp_replace(text, text, text, text)');
    RETURN pg_catalog.regexp_replace(a, b, c, d); END $$;
CREATE FUNCTION extensions.tsquery_phrase(a tsquery, b tsquery, d integer) RETURNS tsquery
    LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'tsquery_phrase(tsquery, tsquery, integer)');
    RETURN pg_catalog.tsquery_phrase(a, b, d); END $$;
CREATE FUNCTION extensions.gin_clean_pending_list(i regclass) RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'gin_clean_pending_list(regclass)');
    RETURN 0; END $$;
CREATE FUNCTION extensions.array_position(a text[], b text) RETURNS integer LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'array_position(text[], text)');
    RETURN pg_catalog.array_position(a, b); END $$;
CREATE FUNCTION extensions.jsonb_path_query(a jsonb, b text) RETURNS SETOF jsonb
    LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'jsonb_path_query(jsonb, text)');
    RETURN QUERY SELECT pg_catalog.jsonb_path_query(a, b::jsonpath); END $$;
CREATE FUNCTION extensions.regexp_matches(a text, b text, c text) RETURNS SETOF text[]
    LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'regexp_matches(text, text, text)');
    RETURN QUERY SELECT pg_catalog.regexp_matches(a, b, c); END $$;
CREATE FUNCTION extensions.plant_add(a double precision, b double precision)
    RETURNS double precision LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'sum(double precision)');
    RETURN coalesce(a, 0) + coalesce(b, 0); END $$;
CREATE AGGREGATE extensions.sum(double precision) (SFUNC = extensions.plant_add,
    STYPE = double precision);
CREATE FUNCTION extensions.jsonb_build_object(text, text, text, text, text, name, text, text,
    text, boolean) RETURNS jsonb LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'jsonb_build_object(...)');
    RETURN '{}'::jsonb; END $$;
-- stop 33: what the BM25 row score, the hybrid's gate and the common lexemes' fetch call
CREATE FUNCTION extensions.split_part(a text, b text, n integer) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'split_part(text, text, integer)');
    RETURN pg_catalog.split_part(a, b, n); END $$;
CREATE FUNCTION extensions.ts_filter(v tsvector, w "char"[]) RETURNS tsvector LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'ts_filter(tsvector, "char"[])');
    RETURN pg_catalog.ts_filter(v, w); END $$;
CREATE FUNCTION extensions.setweight(v tsvector, w "char", l text[]) RETURNS tsvector
    LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'setweight(tsvector, "char", text[])');
    RETURN pg_catalog.setweight(v, w, l); END $$;
CREATE FUNCTION extensions.plant_agg(a text, b text, c text) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'string_agg(text, text)');
    RETURN coalesce(a || c, '') || b; END $$;
CREATE AGGREGATE extensions.string_agg(text, text) (SFUNC = extensions.plant_agg, STYPE = text);
CREATE FUNCTION extensions.plant_path(a jsonb, b text[]) RETURNS jsonb LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, '#>(jsonb, text[])');
    RETURN pg_catalog.jsonb_extract_path(a, VARIADIC b); END $$;
CREATE OPERATOR extensions.#> (LEFTARG = jsonb, RIGHTARG = text[], FUNCTION = extensions.plant_path);
CREATE FUNCTION extensions.plant_match(a tsvector, b tsquery) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, '@@(tsvector, tsquery)');
    RETURN pg_catalog.ts_match_vq(a, b); END $$;
CREATE OPERATOR extensions.@@ (LEFTARG = tsvector, RIGHTARG = tsquery, FUNCTION = extensions.plant_match);
CREATE FUNCTION extensions.plant_cat(a numeric, b text) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, '||(numeric, text)');
    RETURN pg_catalog.textcat(a::text, b); END $$;
CREATE OPERATOR extensions.|| (LEFTARG = numeric, RIGHTARG = text, FUNCTION = extensions.plant_cat);
-- stop 35: what search_text's postings as arrays call (p's aggregates, top's unnest of them and
-- their average size), and the lexeme-to-tsquery expression spliced into _text_pairs and the picks
CREATE FUNCTION extensions.cardinality(a real[]) RETURNS integer LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'cardinality(real[])');
    RETURN pg_catalog.cardinality(a); END $$;
CREATE FUNCTION extensions.unnest(a integer[]) RETURNS SETOF integer LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'unnest(integer[])');
    RETURN QUERY SELECT pg_catalog.unnest(a); END $$;
CREATE FUNCTION extensions.unnest(a real[]) RETURNS SETOF real LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'unnest(real[])');
    RETURN QUERY SELECT pg_catalog.unnest(a); END $$;
CREATE FUNCTION extensions.plant_arr(a integer[], b integer) RETURNS integer[] LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'array_agg(integer)');
    RETURN a || b; END $$;
CREATE AGGREGATE extensions.array_agg(integer) (SFUNC = extensions.plant_arr, STYPE = integer[]);
CREATE FUNCTION extensions.plant_isum(a bigint, b integer) RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'sum(integer)');
    RETURN coalesce(a, 0) + b; END $$;
CREATE AGGREGATE extensions.sum(integer) (SFUNC = extensions.plant_isum, STYPE = bigint);
CREATE FUNCTION extensions.plant_bsum(a numeric, b bigint) RETURNS numeric LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'sum(bigint)');
    RETURN coalesce(a, 0) + b; END $$;
CREATE AGGREGATE extensions.sum(bigint) (SFUNC = extensions.plant_bsum, STYPE = numeric);
CREATE FUNCTION extensions.plant_div(a numeric, b numeric) RETURNS numeric LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, '/(numeric, numeric)');
    RETURN pg_catalog.numeric_div(a, b); END $$;
CREATE OPERATOR extensions./ (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = extensions.plant_div);
CREATE FUNCTION extensions.replace(a text, b text, c text) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'replace(text, text, text)');
    RETURN pg_catalog.replace(a, b, c); END $$;
-- stop 36: the text statistics' count of writes over a partition tree
CREATE FUNCTION extensions.pg_partition_tree(r regclass)
RETURNS TABLE (relid regclass, parentrelid regclass, isleaf boolean, level integer)
LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, 'pg_partition_tree(regclass)');
    RETURN QUERY SELECT * FROM pg_catalog.pg_partition_tree(r); END $$;
"""


def test_better_matching_overloads_in_pgvector_schema_never_run(dsn_ext, roles):
    """Issue 11: with pgvector in `extensions` and CREATE granted there to another role (common on
    hosted Postgres), better-matching overloads of format, unnest, array_fill, cardinality and
    jsonb_build_object planted there ran as pgmemo's owner from a reader's call. The functions now
    run with search_path pg_catalog, pg_temp and reach pgvector by qualified name."""
    owner = connect_raw(dsn_ext)
    owner.execute("SELECT memory.create_domain('plain', 3)")
    owner.execute("SELECT memory.create_domain('empty', 3)")
    name = f"pgmemo_eve_{os.getpid()}_{next(_n)}"
    owner.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE memory_writer')
    try:
        owner.execute(f'GRANT USAGE, CREATE ON SCHEMA extensions TO "{name}"')
        eve = connect_raw(make_conninfo(dsn_ext, user=name))
        eve.execute(PLANTS)
        # control: the plants win over pg_catalog for a caller whose path has their schema
        eve.execute("SET search_path = extensions, pg_catalog")
        eve.execute("SELECT cardinality(ARRAY['a', 'b']), format('%I.%I', 'a'::name, 'b'::name)")
        eve.execute("SELECT * FROM unnest(ARRAY['x']::text[])")
        seen = {r["what"] for r in owner.execute("SELECT what FROM extensions.ran").fetchall()}
        eve.execute("SELECT pg_column_size('[1,2]'::extensions.vector)")
        seen = {r["what"] for r in owner.execute("SELECT what FROM extensions.ran").fetchall()}
        eve.execute("SELECT array_position(ARRAY['a', 'b'], 'b')")
        eve.execute("SELECT jsonb_path_query('{\"a\": 1}'::jsonb, '$.a')")
        eve.execute("SELECT regexp_matches('ab', 'a', 'g')")
        eve.execute("SELECT sum(x) FROM (VALUES (1.5::double precision)) AS v (x)")
        eve.execute("SELECT tsquery_phrase('a'::tsquery, 'b'::tsquery, 1)")
        eve.execute("SELECT gin_clean_pending_list('extensions.ran'::regclass)")
        eve.execute("SELECT split_part('a:b', ':', 2), ts_filter(setweight('a:1'::tsvector, 'A', "
                    "ARRAY['a']), ARRAY['a']::\"char\"[]), '{}'::jsonb #> ARRAY[]::text[], "
                    "'a:1'::tsvector @@ 'a'::tsquery")
        eve.execute("SELECT string_agg(x, ' | ') FROM (VALUES ('a'), ('b')) AS v (x)")
        eve.execute("SELECT 1::numeric || ' job waits'")
        eve.execute("SELECT cardinality(ARRAY[1]::real[]), replace('a', 'a', 'b'), "
                    "1::numeric / 2::numeric")
        eve.execute("SELECT array_agg(x), sum(x), sum(x::bigint) FROM unnest(ARRAY[1, 2]) AS u (x)")
        eve.execute("SELECT * FROM unnest(ARRAY[1.5]::real[])")
        eve.execute("SELECT * FROM pg_partition_tree('extensions.ran')")
        seen = {r["what"] for r in owner.execute("SELECT what FROM extensions.ran").fetchall()}
        assert {"cardinality(text[])", "format(text, name, name)", "unnest(text[])",
                "pg_column_size(vector)", "array_position(text[], text)",
                "jsonb_path_query(jsonb, text)", "regexp_matches(text, text, text)",
                "sum(double precision)", "tsquery_phrase(tsquery, tsquery, integer)",
                "gin_clean_pending_list(regclass)", "split_part(text, text, integer)",
                'ts_filter(tsvector, "char"[])', 'setweight(tsvector, "char", text[])',
                "string_agg(text, text)", "#>(jsonb, text[])", "@@(tsvector, tsquery)",
                "||(numeric, text)", "cardinality(real[])", "unnest(integer[])",
                "unnest(real[])", "array_agg(integer)", "sum(integer)", "sum(bigint)",
                "/(numeric, numeric)", "replace(text, text, text)",
                "pg_partition_tree(regclass)"} <= seen
        owner.execute("TRUNCATE extensions.ran")
        # the calls a reader and a writer make
        eve.execute("RESET search_path")
        eve.execute("SELECT memory.version()")
        eve.execute("SELECT * FROM memory.store_many('plain', ARRAY['alpha beta', 'gamma'], "
                    "NULL, ARRAY['[1,0,0]', '[0,1,0]']::extensions.vector[], ARRAY['a', 'b'])")
        eve.execute("SELECT * FROM memory.search('plain', '[1,0,0]'::extensions.vector, 2)")
        # the filtered planner (estimate, count, cached plan), the hybrid, and memory.search
        # regenerated by the owner's create_domain while the plants are there
        eve.execute("SELECT * FROM memory.search('plain', '[1,0,0]'::extensions.vector, 2, "
                    "filter => '{\"k\": {\"$gte\": 0}}')")
        eve.execute("SELECT * FROM memory.search('plain', '[1,0,0]'::extensions.vector, 2, "
                    "filter => '{\"k\": 1}')")
        eve.execute("SELECT * FROM memory.explain_search('plain', 2, '{\"k\": 1}')")
        owner.execute("SELECT memory.refresh_text_stats('plain')")
        eve.execute("SELECT * FROM memory.search_hybrid('plain', 'alpha', '[1,0,0]'::extensions.vector)")
        owner.execute("SELECT memory.create_domain('later', 3)")
        eve.execute("SELECT * FROM memory.search('later', '[1,0,0]'::extensions.vector, 2)")
        # memory.search_hybrid regenerated meanwhile: its branch (one statement, candidates and
        # fusion), and its general path's fusion (rrf ranks, re-ranking, embeddings read back)
        assert eve.execute("SELECT count(*) AS n FROM memory.search_hybrid('plain', 'alpha', "
                           "'[1,0,0]'::extensions.vector)").fetchone()["n"] == 2
        eve.execute("SELECT * FROM memory.search_hybrid('plain', 'alpha beta', "
                    "'[1,0,0]'::extensions.vector, fusion => 'rrf', with_embeddings => true, "
                    "recency_half_life => '1 day', importance_weight => 0.5)")
        eve.execute("SELECT * FROM memory.search_text('plain', 'alpha beta gamma', match => 'any')")
        # stop 27: search_text's proximity pairs (tsquery_phrase, by _text_pairs) on a query
        # whose words are side by side in a row, and the owner's refresh merging GIN pending
        # lists (gin_clean_pending_list) after the writes above
        assert eve.execute("SELECT count(*) AS n FROM memory.search_text('plain', 'alpha beta')"
                           ).fetchone()["n"] == 1
        owner.execute("SELECT memory.refresh_text_stats('plain')")
        # stop 23's paths: the web-search syntax's groups (regexp_matches), a filter's value
        # check (jsonb_path_query) and $in, search_text's filtered second search, the
        # candidate rule's window (sum) on search_text and on the hybrid's general path
        eve.execute("SELECT * FROM memory.search_text('plain', '\"alpha beta\" OR gamma -delta')")
        eve.execute("SELECT * FROM memory.search('plain', '[1,0,0]'::extensions.vector, 2, "
                    "filter => '{\"k\": {\"$in\": [1, [2]]}, \"o\": {\"p\": [1]}}')")
        eve.execute("SELECT * FROM memory.search_text('plain', 'alpha', 2, "
                    "filter => '{\"k\": {\"$ne\": 1}}')")
        eve.execute("SELECT * FROM memory.search_hybrid('plain', 'alpha gamma', "
                    "'[1,0,0]'::extensions.vector, filter => '{\"k\": {\"$exists\": false}}')")
        eve.execute("SELECT * FROM memory.explain_search('empty')")
        # stop 35's p as arrays: a common word's best rows (memory_private.text_top, sliced and
        # summed) beside the rarest word's postings, with a budget that admits no common word
        owner.execute("SELECT memory.refresh_text_stats('plain')")
        assert owner.execute("SELECT count(*) AS n FROM memory_private.text_top "
                             "WHERE domain = 'plain'").fetchone()["n"] > 0
        eve.execute("SET pgmemo.bm25_budget = 0")
        assert eve.execute("SELECT count(*) AS n FROM memory.search_text('plain', "
                           "'alpha beta gamma')").fetchone()["n"] >= 1
        eve.execute("RESET pgmemo.bm25_budget")
        # diagnose's counted sentences (memory_private._count_of: a count as numeric || text),
        # here no_live_worker's for a row waiting for its embedding
        owner.execute("SELECT memory.store('plain', 'delta')")
        details = [r["detail"] for r in eve.execute("SELECT * FROM memory.diagnose('plain')")
                   .fetchall() if r["check_name"] == "no_live_worker"]
        assert details and details[0].startswith("1 job waits for an embedding"), details
        # stop 37's paths while that row waits: the hybrid's branch and its general path (with a
        # filter, applied to the waiting rows too) score it; a rename of a row with its content
        # (the stale rule and the queue's triggers, by the owner's own UPDATE of the table)
        assert "delta" in {r["content"] for r in eve.execute(
            "SELECT content FROM memory.search_hybrid('plain', 'delta', '[1,0,0]'::extensions.vector)")}
        eve.execute("SELECT * FROM memory.search_hybrid('plain', 'delta', '[1,0,0]'::extensions.vector, "
                    "filter => '{\"k\": {\"$exists\": false}}', fusion => 'rrf')")
        owner.execute("UPDATE memory_data.plain_memories SET id = 'a2', content = 'alpha renamed' "
                      "WHERE id = 'a'")
        assert owner.execute("SELECT embedding IS NULL AS gone FROM memory_data.plain_memories "
                             "WHERE id = 'a2'").fetchone()["gone"]
        # stop 36's paths: the text statistics' staleness (_text_writes over a partition tree)
        # and the sweep that skips rows a writer holds, in run_maintenance; grants by role OID;
        # the queue's statements that skip a job another transaction holds (_lock_claimed)
        owner.execute("SELECT memory.store_many('plain', ARRAY(SELECT 'more ' || i "
                      "FROM generate_series(1, 60) AS i))")
        owner.execute("SELECT pg_stat_force_next_flush()")
        owner.execute("SELECT memory.run_maintenance()")
        owner.execute("SELECT memory.refresh_text_stats()")
        owner.execute(f"SELECT memory.grant_domain('plain', '{name}', 'read')")
        owner.execute(f"SELECT memory.revoke_domain('plain', '{name}', 'read')")
        jobs = [r["job_id"] for r in owner.execute(
            "SELECT job_id FROM memory.claim_embedding_jobs(4, 'w', only_domain => 'plain')")]
        assert len(jobs) == 4
        owner.execute("SELECT memory.extend_claims(%s)", (jobs[:1],))
        owner.execute("SELECT memory.fail_embedding_jobs(%s, 'x')", (jobs[1:2],))
        owner.execute("SELECT memory.release_claims(%s)", (jobs[2:],))
        owner.execute("SELECT memory.requeue_dead('plain')")
        eve.execute("SELECT * FROM memory.domains")
        eve.execute("SELECT * FROM memory.embedding_coverage")
        ran = owner.execute("SELECT who, what FROM extensions.ran").fetchall()
        assert ran == [], ran
        eve.close()
    finally:
        owner.execute("DROP TABLE IF EXISTS extensions.ran")
        owner.execute("DROP AGGREGATE IF EXISTS extensions.sum(double precision)")
        owner.execute("DROP AGGREGATE IF EXISTS extensions.string_agg(text, text)")
        owner.execute("DROP OPERATOR IF EXISTS extensions.#> (jsonb, text[])")
        owner.execute("DROP OPERATOR IF EXISTS extensions.@@ (tsvector, tsquery)")
        owner.execute("DROP OPERATOR IF EXISTS extensions.|| (numeric, text)")
        owner.execute("DROP OPERATOR IF EXISTS extensions./ (numeric, numeric)")
        for agg in ["array_agg(integer)", "sum(integer)", "sum(bigint)"]:
            owner.execute(f"DROP AGGREGATE IF EXISTS extensions.{agg}")
        for fn in ["plant_arr(integer[], integer)", "plant_isum(bigint, integer)",
                   "plant_bsum(numeric, bigint)", "plant_div(numeric, numeric)",
                   "cardinality(real[])", "unnest(integer[])", "unnest(real[])",
                   "replace(text, text, text)", "pg_partition_tree(regclass)"]:
            owner.execute(f"DROP FUNCTION IF EXISTS extensions.{fn}")
        for fn in ["plant_agg(text, text, text)", "plant_path(jsonb, text[])",
                   "plant_cat(numeric, text)",
                   "plant_match(tsvector, tsquery)", "split_part(text, text, integer)",
                   'ts_filter(tsvector, "char"[])', 'setweight(tsvector, "char", text[])']:
            owner.execute(f"DROP FUNCTION IF EXISTS extensions.{fn}")
        owner.execute("DROP FUNCTION IF EXISTS extensions.plant_add(double precision, "
                      "double precision)")
        for fn in ["format(text, name, name)", "unnest(text[])", "array_fill(real, integer[])",
                   "cardinality(text[])", "pg_column_size(extensions.vector)",
                   "tsquery_phrase(tsquery, tsquery, integer)", "gin_clean_pending_list(regclass)",
                   "regexp_replace(text, text, text, text)", "array_position(text[], text)",
                   "jsonb_build_object(text, text, text, text, text, name, text, text, text, boolean)",
                   "jsonb_path_query(jsonb, text)", "regexp_matches(text, text, text)"]:
            owner.execute(f"DROP FUNCTION IF EXISTS extensions.{fn}")
        owner.execute(f'REVOKE ALL ON SCHEMA extensions FROM "{name}"')
        owner.execute(f'DROP ROLE "{name}"')
        owner.close()


HALFVEC_PLANTS = """
CREATE TABLE extensions.ran (who text, what text);
GRANT INSERT, SELECT ON extensions.ran TO PUBLIC;
""" + "".join(f"""
CREATE FUNCTION extensions.plant_{name}(a extensions.halfvec, b extensions.vector)
    RETURNS double precision LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO extensions.ran VALUES (current_user, '{op}(halfvec, vector)');
    RETURN a OPERATOR(extensions.{op}) b::extensions.halfvec; END $$;
CREATE OPERATOR extensions.{op} (LEFTARG = extensions.halfvec, RIGHTARG = extensions.vector,
    FUNCTION = extensions.plant_{name});
""" for name, op in [("cos", "<=>"), ("l2", "<->"), ("ip", "<#>")])


def test_planted_halfvec_distance_operators_never_run(dsn_ext, roles):
    """Stop 28 (an attack): pgvector has no halfvec-vector distance operator, so a halfvec
    domain's search (its column against the vector query) let PostgreSQL pick the best match
    among the extension schema's operators; an exact (halfvec, vector) operator planted there by
    a role with CREATE on the schema won, and ran as pgmemo's owner from a reader's search. The
    query vector is now cast to halfvec (memory_private._distance_to_sql): pgvector's own
    operator is the exact match on every path."""
    owner = connect_raw(dsn_ext)
    for dist in ("cosine", "l2", "inner_product"):
        owner.execute(f"SELECT memory.create_domain('half_{dist}', 3, distance => '{dist}', "
                      "embedding_type => 'halfvec')")
        owner.execute(f"SELECT * FROM memory.store_many('half_{dist}', ARRAY['alpha beta', "
                      "'gamma alpha'], ARRAY['{\"k\": 1}', '{\"k\": 2}']::jsonb[], "
                      "ARRAY['[1,0,0]', '[0,1,0]']::extensions.vector[], ARRAY['a', 'b'])")
        owner.execute(f"SELECT memory.refresh_text_stats('half_{dist}')")
    name = f"pgmemo_eve_{os.getpid()}_{next(_n)}"
    owner.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE memory_reader')
    try:
        owner.execute(f'GRANT USAGE, CREATE ON SCHEMA extensions TO "{name}"')
        eve = connect_raw(make_conninfo(dsn_ext, user=name))
        eve.execute(HALFVEC_PLANTS)
        # control: for a halfvec against a vector, the planted operators win
        for op in ("<=>", "<->", "<#>"):
            eve.execute(f"SELECT '[1,0,0]'::extensions.halfvec OPERATOR(extensions.{op}) "
                        "'[1,0,0]'::extensions.vector")
        assert len(owner.execute("SELECT * FROM extensions.ran").fetchall()) == 3
        owner.execute("TRUNCATE extensions.ran")
        q = "'[1,0,0]'::extensions.vector"
        for dist in ("cosine", "l2", "inner_product"):
            d = f"half_{dist}"
            calls = [
                f"SELECT * FROM memory.search('{d}', {q}, 2)",
                f"SELECT * FROM memory.search('{d}', {q}, 2, filter => '{{\"k\": 1}}')",
                f"SELECT * FROM memory.search('{d}', {q}, 2, filter => '{{\"k\": {{\"$gte\": 1}}}}')",
                f"SELECT * FROM memory.search('{d}', {q}, 2, filter => '{{\"k\": {{\"$gte\": 9}}}}')",
                f"SELECT * FROM memory.search('{d}', {q}, 2, with_embeddings => true, "
                "min_similarity => -10)",
                f"SELECT * FROM memory.search('{d}', {q}, 2, recency_half_life => '1 day')",
                f"SELECT * FROM memory.search_hybrid('{d}', 'alpha', {q})",
                f"SELECT * FROM memory.search_hybrid('{d}', 'alpha', {q}, "
                "filter => '{\"k\": {\"$in\": [1, 2]}}', fusion => 'rrf')",
                f"SELECT * FROM memory.explain_search('{d}', 2, '{{\"k\": 1}}')",
            ]
            for sql in calls:
                rows = eve.execute(sql).fetchall()
                # (the $gte 9 filter matches no row: the scan gives up, the exact query runs)
                assert bool(rows) != ("9}" in sql), sql
        ran = owner.execute("SELECT who, what FROM extensions.ran").fetchall()
        assert ran == [], ran
        eve.close()
    finally:
        owner.execute("DROP TABLE IF EXISTS extensions.ran")
        for op in ("<=>", "<->", "<#>"):
            owner.execute(f"DROP OPERATOR IF EXISTS extensions.{op} (extensions.halfvec, "
                          "extensions.vector)")
        for fn in ("cos", "l2", "ip"):
            owner.execute(f"DROP FUNCTION IF EXISTS extensions.plant_{fn}(extensions.halfvec, "
                          "extensions.vector)")
        owner.execute(f'REVOKE ALL ON SCHEMA extensions FROM "{name}"')
        owner.execute(f'DROP ROLE "{name}"')
        owner.close()


def test_text_config_of_an_untrusted_role_is_refused(conn, roles):
    """Stop 28 (an attack): create_domain took any text search configuration; its owner could
    later drop a mapping (rows indexed and searched differently, silently) or DROP it CASCADE,
    which dropped the domain's content_tsv column and GIN index (then every search_text failed
    with an internal error). The configuration and its dictionaries must belong to a trusted
    role."""
    mallory, mallory_dsn = roles(prefix="mallory")
    conn.execute(f'GRANT CREATE ON SCHEMA public TO "{mallory}"')
    m = _connect(mallory_dsn)
    try:
        m.execute("CREATE TEXT SEARCH CONFIGURATION public.m_cfg (COPY = english)")
        m.execute("CREATE TEXT SEARCH DICTIONARY public.m_dict (TEMPLATE = simple)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="configuration public.m_cfg belongs to .*does not trust"):
            conn.execute("SELECT memory.create_domain('cfg_m', 3, text_config => 'public.m_cfg')")
        assert conn.execute("SELECT count(*) AS n FROM memory.domains WHERE domain = 'cfg_m'"
                            ).fetchone()["n"] == 0
        # a trusted role's configuration that maps words to another role's dictionary
        conn.execute("CREATE TEXT SEARCH CONFIGURATION public.o_cfg (COPY = english)")
        conn.execute("ALTER TEXT SEARCH CONFIGURATION public.o_cfg "
                     "ALTER MAPPING FOR asciiword WITH public.m_dict")
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="dictionary public.m_dict .*does not trust"):
            conn.execute("SELECT memory.create_domain('cfg_o', 3, text_config => 'public.o_cfg')")
        # the trusted role's own, with its own dictionaries: accepted
        conn.execute("ALTER TEXT SEARCH CONFIGURATION public.o_cfg "
                     "ALTER MAPPING FOR asciiword WITH english_stem")
        conn.execute("SELECT memory.create_domain('cfg_o', 3, text_config => 'public.o_cfg')")
        conn.execute("SELECT memory.store('cfg_o', 'hello world', '{}', '[1,0,0]')")
        assert len(conn.execute("SELECT * FROM memory.search_text('cfg_o', 'hello')").fetchall()) == 1
        conn.execute("SELECT memory.drop_domain('cfg_o')")
    finally:
        m.close()
        conn.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS public.o_cfg")
        conn.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS public.m_cfg")
        conn.execute("DROP TEXT SEARCH DICTIONARY IF EXISTS public.m_dict")
        conn.execute(f'REVOKE CREATE ON SCHEMA public FROM "{mallory}"')


def test_text_config_handed_to_an_untrusted_role_later_is_reported_and_refused(conn, roles):
    """Stop 29: create_domain checks its text_config, but a configuration handed to another role
    afterwards (ALTER TEXT SEARCH CONFIGURATION ... OWNER TO), or given a mapping to another
    role's dictionary, was never checked again: diagnose said nothing and begin_reembed made a
    shadow domain whose view computes its tsvector with it. diagnose reports it now
    (untrusted_text_config, with the statement that gives it back), and begin_reembed refuses."""
    mallory, mallory_dsn = roles(prefix="mallory")
    owner = _pgmemo_owner(conn)
    conn.execute(f'GRANT CREATE ON SCHEMA public TO "{mallory}"')
    m = _connect(mallory_dsn)

    def findings():
        return conn.execute("SELECT severity, detail, fix_sql FROM memory.diagnose('cfg_h') "
                            "WHERE check_name = 'untrusted_text_config'").fetchall()
    try:
        conn.execute("CREATE TEXT SEARCH CONFIGURATION public.h_cfg (COPY = english)")
        conn.execute("SELECT memory.create_domain('cfg_h', 3, text_config => 'public.h_cfg')")
        conn.execute("SELECT memory.store('cfg_h', 'hello world', '{}', '[1,0,0]')")
        assert findings() == []
        # handed to a role pgmemo does not trust, after create_domain checked it
        conn.execute(f'ALTER TEXT SEARCH CONFIGURATION public.h_cfg OWNER TO "{mallory}"')
        (row,) = findings()
        assert row["severity"] == "error"
        assert "text search configuration public.h_cfg belongs to" in row["detail"]
        assert mallory in row["detail"]
        assert row["fix_sql"] == (f"ALTER TEXT SEARCH CONFIGURATION public.h_cfg OWNER TO "
                                  f"{conn.execute('SELECT quote_ident(%s) AS q', (owner,)).fetchone()['q']};")
        # (every domain: the check is in the unfiltered call too)
        assert any(r["domain"] == "cfg_h" for r in conn.execute(
            "SELECT domain FROM memory.diagnose() WHERE check_name = 'untrusted_text_config'"))
        # begin_reembed would make a shadow domain computing its tsvector with it: refused,
        # before anything is made
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="configuration public.h_cfg belongs to .*does not trust"):
            conn.execute("SELECT memory.begin_reembed('cfg_h', 'model-2', 3)")
        assert conn.execute("SELECT count(*) AS n FROM memory_private.domains "
                            "WHERE domain = 'cfg_h__next'").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM pg_attribute WHERE attrelid = "
                            "'memory_data.cfg_h_memories'::regclass AND attname = 'embedding_next'"
                            ).fetchone()["n"] == 0
        # the fix given back is one statement, and then it is clean and begin_reembed works
        conn.execute(row["fix_sql"])
        assert findings() == []
        # a trusted configuration that maps words to a dictionary of a role pgmemo does not trust
        m.execute("CREATE TEXT SEARCH DICTIONARY public.h_dict (TEMPLATE = simple)")
        conn.execute("ALTER TEXT SEARCH CONFIGURATION public.h_cfg "
                     "ALTER MAPPING FOR asciiword WITH public.h_dict")
        (row,) = findings()
        assert "text search dictionary public.h_dict (of configuration public.h_cfg)" in row["detail"]
        assert row["fix_sql"].startswith("ALTER TEXT SEARCH DICTIONARY public.h_dict OWNER TO ")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="dictionary public.h_dict"):
            conn.execute("SELECT memory.begin_reembed('cfg_h', 'model-2', 3)")
        conn.execute(row["fix_sql"])
        assert findings() == []
        assert conn.execute("SELECT memory.begin_reembed('cfg_h', 'model-2', 3) AS s"
                            ).fetchone()["s"] == "cfg_h__next"
        conn.execute("SELECT memory.cancel_reembed('cfg_h')")
    finally:
        m.close()
        conn.execute("SELECT memory.drop_domain(d.domain) FROM memory_private.domains AS d "
                     "WHERE d.domain IN ('cfg_h__next', 'cfg_h')")
        conn.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS public.h_cfg")
        conn.execute("DROP TEXT SEARCH DICTIONARY IF EXISTS public.h_dict")
        conn.execute(f'REVOKE CREATE ON SCHEMA public FROM "{mallory}"')


def test_text_config_of_a_shadow_domain_handed_over_later(conn, roles):
    """Stop 29: a re-embed's shadow domain (an adopted-style view computing its tsvector with the
    domain's configuration) whose configuration is handed over later: diagnose reports both
    domains, and finish_reembed, which makes no view from it for pgmemo's own table, still
    works; an adopted domain's text index is not made from it (sync_text_index refuses)."""
    mallory, _ = roles(prefix="mallory")
    try:
        conn.execute("CREATE TEXT SEARCH CONFIGURATION public.s_cfg (COPY = english)")
        conn.execute("SELECT memory.create_domain('cfg_s', 3, text_config => 'public.s_cfg')")
        conn.execute("SELECT memory.store('cfg_s', 'hello world', '{}', '[1,0,0]')")
        conn.execute("SELECT memory.begin_reembed('cfg_s', 'model-2', 3)")
        conn.execute(f'ALTER TEXT SEARCH CONFIGURATION public.s_cfg OWNER TO "{mallory}"')
        assert {r["domain"] for r in conn.execute(
            "SELECT domain FROM memory.diagnose() WHERE check_name = 'untrusted_text_config'")} \
            >= {"cfg_s", "cfg_s__next"}
        # an adopted domain given that configuration (by hand here: adopt_table takes none)
        conn.execute("CREATE TABLE public.s_docs (id bigint PRIMARY KEY, body text NOT NULL, "
                     f"emb vector({DIM}))")
        conn.execute("INSERT INTO public.s_docs VALUES (1, 'first memory')")
        conn.execute("SELECT memory.adopt_table('s_docs', 'public.s_docs', 'id', 'body', 'emb', "
                     "create_indexes => false)")
        conn.execute("UPDATE memory_private.domains SET text_config = 'public.s_cfg' "
                     "WHERE domain = 's_docs'")
        for sql in ("SELECT memory.sync_text_index('s_docs')",
                    "SELECT memory.fill_text_index('s_docs')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="public.s_cfg"):
                conn.execute(sql)
        # run_maintenance goes on, with a WARNING for that domain's rows
        conn.execute("SELECT memory.run_maintenance()")
        conn.execute("SELECT memory.drop_domain('s_docs')")
    finally:
        conn.execute("SELECT memory.cancel_reembed('cfg_s') FROM memory_private.reembeds "
                     "WHERE domain = 'cfg_s'")
        conn.execute("SELECT memory.drop_domain(d.domain) FROM memory_private.domains AS d "
                     "WHERE d.domain IN ('cfg_s', 's_docs')")
        conn.execute("DROP TABLE IF EXISTS public.s_docs")
        conn.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS public.s_cfg")


def test_diagnose_reports_a_schema_others_can_create_in(conn, roles):
    name, _ = roles(prefix="creator")
    assert not conn.execute("SELECT * FROM memory.diagnose() WHERE check_name = "
                            "'schema_create_on_path'").fetchall()
    conn.execute(f'GRANT CREATE ON SCHEMA memory TO "{name}"')
    rows = conn.execute("SELECT * FROM memory.diagnose() WHERE check_name = "
                        "'schema_create_on_path'").fetchall()
    assert len(rows) == 1 and rows[0]["severity"] == "error" and name in rows[0]["detail"]
    conn.execute(rows[0]["fix_sql"])
    assert not conn.execute("SELECT * FROM memory.diagnose() WHERE check_name = "
                            "'schema_create_on_path'").fetchall()


def _distinct_words(n_bytes: int) -> str:
    """Text of distinct words (no two alike), about n_bytes long: the worst case for a tsvector."""
    import string
    letters = string.ascii_lowercase
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


def test_content_size_is_bounded_per_domain(conn):
    """Issue 11: a 50 MB content was stored and took ~800 MB in one backend. Content over the
    domain's max (default 1 MB) is refused before any work, in every write."""
    conn.execute("SELECT memory.create_domain('big', 3)")
    big = "x" * (1024 * 1024 + 1)
    calls = [
        ("SELECT memory.store('big', %s)", (big,)),
        ("SELECT * FROM memory.store_many('big', ARRAY['small', %s])", (big,)),
        ("SELECT memory.import_rows('big', ARRAY['a', 'b'], ARRAY['small', %s])", (big,)),
    ]
    for sql, args in calls:
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="1048576 bytes"):
            conn.execute(sql, args)
    rid = conn.execute("SELECT memory.store('big', 'small') AS id").fetchone()["id"]
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="contents\\[2\\] is 1048577 bytes"):
        conn.execute("SELECT * FROM memory.store_many('big', ARRAY['small', %s])", (big,))
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):
        conn.execute("SELECT memory.update('big', %s, content => %s)", (rid, big))
    assert conn.execute("SELECT count(*) AS n FROM memory_data.big_memories").fetchone()["n"] == 1
    # per domain: lower, then higher
    conn.execute("SELECT memory.set_max_content_bytes('big', 10)")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="at most 10 bytes"):
        conn.execute("SELECT memory.store('big', 'eleven char')")
    conn.execute("SELECT memory.set_max_content_bytes('big', 4 * 1024 * 1024)")
    conn.execute("SELECT memory.store('big', %s)", (big,))
    conn.execute("SELECT memory.set_max_content_bytes('big', NULL)")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):
        conn.execute("SELECT memory.store('big', %s)", (big,))


def test_tsvector_overflow_is_a_clear_error(conn):
    """Issue 11: content with more distinct words than a tsvector holds failed with 'string is
    too long for tsvector' (a whole store_many), and on an adopted table the application's own
    INSERT, which worked before adoption."""
    huge = _distinct_words(1_300_000)
    conn.execute("SELECT memory.create_domain('w', 3)")
    conn.execute("SELECT memory.set_max_content_bytes('w', 4 * 1024 * 1024)")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="too many distinct words"):
        conn.execute("SELECT * FROM memory.store_many('w', ARRAY['fine', %s])", (huge,))



def test_per_domain_access(conn, roles):
    """Issue 11, item 3: after revoke_domain('health', 'memory_reader', 'read') and
    grant_domain('health', 'doctor', 'read'), a LOGIN member of memory_reader that is not doctor
    still searches startup but gets an error from every read of health and does not see it in
    the views, while doctor reads it; after revoke_domain('health', 'memory_writer', 'write') a
    plain writer cannot store there; the worker role likewise."""
    for d in ["health", "startup"]:
        conn.execute("SELECT memory.create_domain(%s, 3)", (d,))
        conn.execute("SELECT memory.store(%s, %s, '{}', '[1,0,0]')", (d, f"{d} memory about sleep"))
    hid = conn.execute("SELECT id FROM memory_data.health_memories").fetchone()["id"]
    doctor = f"pgmemo_doctor_{os.getpid()}_{next(_n)}"
    conn.execute(f'CREATE ROLE "{doctor}" NOLOGIN IN ROLE memory_reader')
    try:
        reader, reader_dsn = roles("memory_reader", prefix="reader")
        doc, doc_dsn = roles("memory_reader", doctor, prefix="doc")
        writer, writer_dsn = roles("memory_writer", prefix="writer")
        worker, worker_dsn = roles("memory_worker", prefix="worker")
        assert conn.execute("SELECT memory.revoke_domain('health', 'memory_reader', 'read') AS r").fetchone()["r"]
        assert conn.execute("SELECT memory.grant_domain('health', %s, 'read') AS r", (doctor,)).fetchone()["r"]
        assert not conn.execute("SELECT memory.grant_domain('health', %s, 'read') AS r", (doctor,)).fetchone()["r"]
        r, d = connect_raw(reader_dsn), connect_raw(doc_dsn)
        reads = [
            "SELECT * FROM memory.search('{d}', '[1,0,0]')",
            "SELECT * FROM memory.search_text('{d}', 'sleep')",
            "SELECT * FROM memory.search_hybrid('{d}', 'sleep', '[1,0,0]')",
            "SELECT * FROM memory.get('{d}', 'x')",
            "SELECT * FROM memory.get_many('{d}', ARRAY['x'])",
            "SELECT * FROM memory.explain_search('{d}')",
            "SELECT * FROM memory.diagnose('{d}')",
            "SELECT * FROM memory.queue_counts('{d}')",
        ]
        for sql in reads:
            assert r.execute(sql.format(d="startup")) is not None
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match='may not read domain "health"'):
                r.execute(sql.format(d="health"))
            d.execute(sql.format(d="health"))
        assert len(r.execute("SELECT * FROM memory.search('startup', '[1,0,0]')").fetchall()) == 1
        assert len(d.execute("SELECT * FROM memory.search('health', '[1,0,0]')").fetchall()) == 1
        for view in ["domains", "embedding_coverage", "queue_status", "vector_indexes"]:
            seen = {x["domain"] for x in r.execute(f"SELECT domain FROM memory.{view}").fetchall()}
            assert "health" not in seen and "startup" in seen, (view, seen)
            seen = {x["domain"] for x in d.execute(f"SELECT domain FROM memory.{view}").fetchall()}
            assert {"health", "startup"} <= seen, (view, seen)
        assert "health" not in {x["domain"] for x in r.execute("SELECT domain FROM memory.diagnose()")}
        # a writer is a reader (through memory_reader): it lost health's read too, kept write
        w = connect_raw(writer_dsn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            w.execute("SELECT * FROM memory.get('health', 'x')")
        w.execute("SELECT memory.store('health', 'written blind')")
        conn.execute("SELECT memory.revoke_domain('health', 'memory_writer', 'write')")
        for sql in ["SELECT memory.store('{d}', 'x')",
                    "SELECT * FROM memory.store_many('{d}', ARRAY['x'])",
                    "SELECT memory.update('{d}', %s, content => 'y')",
                    "SELECT memory.forget('{d}', %s)"]:
            args = (hid,) if "%s" in sql else ()
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match='may not write domain "health"'):
                w.execute(sql.format(d="health"), args)
        w.execute("SELECT memory.store('startup', 'still fine')")
        # SET ROLE: a role granted doctor without inheriting it reads health only as doctor
        sr, sr_dsn = roles("memory_reader", prefix="setrole")
        conn.execute(f'GRANT "{doctor}" TO "{sr}" WITH INHERIT FALSE')
        s = connect_raw(sr_dsn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            s.execute("SELECT * FROM memory.get('health', 'x')")
        s.execute(f'SET ROLE "{doctor}"')
        s.execute("SELECT * FROM memory.get('health', 'x')")
        s.execute("RESET ROLE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            s.execute("SELECT * FROM memory.get('health', 'x')")
        # the worker: jobs of a domain it may not write are neither claimed nor completed
        conn.execute("SELECT memory.store('health', 'needs an embedding')")
        conn.execute("SELECT memory.store('startup', 'needs one too')")
        wk = connect_raw(worker_dsn)
        early = wk.execute("SELECT * FROM memory.claim_embedding_jobs(1, 'w', only_domain => 'health')").fetchall()
        assert len(early) == 1
        conn.execute("SELECT memory.revoke_domain('health', 'memory_worker', 'write')")
        jobs = wk.execute("SELECT * FROM memory.claim_embedding_jobs(100, 'w')").fetchall()
        assert jobs and {j["domain"] for j in jobs} == {"startup"}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            wk.execute("SELECT * FROM memory.claim_embedding_jobs(1, 'w', only_domain => 'health')")
        done = wk.execute("SELECT memory.complete_embedding_jobs(%s, ARRAY['[1,0,0]']::vector[]) AS n",
                          ([early[0]["job_id"]],)).fetchone()["n"]
        assert done == 0
        assert conn.execute("SELECT embedding FROM memory_data.health_memories WHERE content = "
                            "'needs an embedding'").fetchone()["embedding"] is None
        seen = {x["domain"] for x in wk.execute("SELECT domain FROM memory.queue_status").fetchall()}
        assert "startup" in seen
        # argument checks
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("SELECT memory.grant_domain('health', 'no_such_role_x', 'read')")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SELECT memory.grant_domain('health', %s, 'delete')", (doctor,))
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("SELECT memory.grant_domain('nope', %s, 'read')", (doctor,))
        assert not conn.execute("SELECT memory.revoke_domain('startup', %s, 'read') AS r",
                                (doctor,)).fetchone()["r"]
        for c in (r, d, w, s, wk):
            c.close()
    finally:
        conn.execute(f'DROP OWNED BY "{doctor}"')
        conn.execute(f'DROP ROLE "{doctor}"')


ODD_SCHEMAS = ['Tracker', 'my schema', 'we"ird', 'dot.ted', 'données']


@pytest.mark.parametrize("schema", ODD_SCHEMAS)
def test_names_that_need_quoting(conn, schema):
    """Issue 11, item 5: concurrent_index_statements cast an unquoted schema name to
    regnamespace (schema "Tracker": 3F000; odd names: 42602). Every function that takes or
    builds a name, with mixed case, spaces, quotes, dots and non-ASCII schema, table and column
    names: adopt, the statements of a concurrent build (run one by one), writes, searches,
    diagnostics, re-embed, release."""
    from psycopg import sql
    sch = sql.Identifier(schema)
    table = sql.Identifier(schema, 'Mes "notes".v1')
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sch))
    conn.execute(sql.SQL('CREATE TABLE {} ("Id" bigint PRIMARY KEY, "Le contenu" text NOT NULL, '
                         '"emb.é" vector(3), metadata jsonb NOT NULL DEFAULT {})').format(table, sql.Literal("{}")))
    conn.execute(sql.SQL("""INSERT INTO {} VALUES (1, 'première note', '[1,0,0]', '{{"k": 1}}'),
                            (2, 'second note', NULL, '{{}}')""").format(table))
    qualified = table.as_string(conn)  # e.g. "my schema"."Mes ""notes"".v1"
    conn.execute("SELECT memory.adopt_table('odd', %s::regclass, 'Id', 'Le contenu', 'emb.é', "
                 "create_indexes => false)", (qualified,))
    stmts = [r["s"] for r in conn.execute(
        "SELECT s FROM memory.concurrent_index_statements('odd') AS s").fetchall()]
    assert stmts and stmts[-1].startswith("SELECT memory.create_hnsw_index")
    for s in stmts:
        conn.execute(s)
    assert not conn.execute("SELECT * FROM memory.concurrent_index_statements('odd') AS s "
                            "WHERE s LIKE 'CREATE INDEX%'").fetchall()
    assert not conn.execute("SELECT * FROM memory.diagnose('odd') WHERE severity = 'error'").fetchall()
    assert conn.execute("SELECT count(*) AS n FROM memory.vector_indexes WHERE domain = 'odd'").fetchone()["n"] == 1
    conn.execute("SELECT memory.store('odd', 'troisième note', '{\"k\": 3}', '[0,1,0]', id => '3')")
    assert conn.execute("SELECT memory.update('odd', '2', content => 'second note edited')").fetchone()
    hits = conn.execute("SELECT id FROM memory.search('odd', '[1,0,0]', 2)").fetchall()
    assert hits[0]["id"] == "1"
    assert conn.execute("SELECT id FROM memory.search_text('odd', 'edited')").fetchone()["id"] == "2"
    assert len(conn.execute("SELECT * FROM memory.get_many('odd', ARRAY['1', '2'])").fetchall()) == 2
    assert conn.execute("SELECT rows FROM memory.domains WHERE domain = 'odd'").fetchone()["rows"] == 3
    conn.execute("SELECT * FROM memory.embedding_coverage")
    conn.execute("SELECT * FROM memory.explain_search('odd')")
    conn.execute("SELECT memory.begin_reembed('odd', 'model-2', 3)")
    conn.execute("SELECT memory.cancel_reembed('odd')")
    assert conn.execute("SELECT memory.forget('odd', '1')").fetchone()
    conn.execute("SELECT memory.drop_domain('odd')")
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sch))



def test_the_columns_pgmemo_converts_keep_built_in_types(conn, adopted):
    """A cast of the table owner's (CREATE CAST needs the ownership of one side only) is never on
    pgmemo's path: adoption takes built-in id types, a string content column and the optional
    columns' exact types, and the domain's view pins them (ALTER COLUMN ... TYPE is refused)."""
    a, b = adopted["a"], adopted["b"]
    a.execute("CREATE TYPE app.body AS (txt text)")
    a.execute("CREATE TYPE app.tag AS ENUM ('a')")
    a.execute("CREATE DOMAIN app.txt AS text")
    for arg, fn in [("app.body", "body_out"), ("app.tag", "tag_out")]:
        a.execute(f"""CREATE FUNCTION app.{fn}(x {arg}) RETURNS text LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO app.ran VALUES (current_user, '{fn}'); RETURN 'x'; END $$""")
        a.execute(f"CREATE CAST ({arg} AS text) WITH FUNCTION app.{fn}({arg}) AS IMPLICIT")
    for col, using in [("body", "ROW(body)::app.body"), ("emb", "NULL::app.tag")]:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="used by a view"):
            a.execute(f"ALTER TABLE app.docs ALTER COLUMN {col} TYPE {using.split('::')[1]} USING {using}")
    # (her tables are refused as hers, stop 26: pgmemo's owner owns these, her types stay hers)
    a.execute(f"CREATE TABLE app.t (id app.tag PRIMARY KEY, body text, emb vector({DIM}))")
    conn.execute("ALTER TABLE app.t OWNER TO CURRENT_USER")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="cannot be a pgmemo id"):
        conn.execute("SELECT memory.adopt_table('t', 'app.t', 'id', 'body', 'emb')")
    a.execute(f"CREATE TABLE app.u (id text PRIMARY KEY, body app.body, emb vector({DIM}), "
              "embedding_model app.tag)")
    conn.execute("ALTER TABLE app.u OWNER TO CURRENT_USER")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="not a text type"):
        conn.execute("SELECT memory.adopt_table('u', 'app.u', 'id', 'body', 'emb')")
    # a string domain of hers: a cast from a domain is never used (PostgreSQL ignores it), and
    # a column of her type that is not the mapped optional column's type is not read
    a.execute("CREATE FUNCTION app.txt_out(x app.txt) RETURNS text LANGUAGE plpgsql AS $$ "
              "BEGIN INSERT INTO app.ran VALUES (current_user, 'txt_out'); RETURN x; END $$")
    a.execute("CREATE CAST (app.txt AS text) WITH FUNCTION app.txt_out(app.txt) AS IMPLICIT")
    a.execute(f"CREATE TABLE app.v (id text PRIMARY KEY, body app.txt NOT NULL, emb vector({DIM}), "
              "embedding_model app.tag)")
    conn.execute("ALTER TABLE app.v OWNER TO CURRENT_USER")
    conn.execute(f'GRANT INSERT ON app.v TO "{adopted["alice"]}"')
    # (a domain of hers is refused whatever it holds now: ALTER DOMAIN ... SET DEFAULT locks no
    # table, so its default could change between pgmemo's check and its INSERT; stop 26)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="made of domain app.txt, owned by"):
        conn.execute("SELECT memory.adopt_table('v', 'app.v', 'id', 'body', 'emb')")
    conn.execute("ALTER DOMAIN app.txt OWNER TO CURRENT_USER")
    conn.execute("SELECT memory.adopt_table('v', 'app.v', 'id', 'body', 'emb')")
    conn.execute("SELECT memory.grant_domain('v', %s, 'write')", (adopted["bob"],))
    a.execute("INSERT INTO app.v (id, body) VALUES ('1', 'a memory of hers')")
    b.execute("SELECT memory.store('v', 'another memory', id => '2')")
    assert b.execute("SELECT count(*) AS n FROM memory.search_text('v', 'memory')").fetchone()["n"] == 2
    assert b.execute("SELECT content FROM memory.get('v', '1')").fetchone()["content"] == "a memory of hers"
    conn.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'v')")
    assert _ran(conn) == []
