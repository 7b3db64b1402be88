"""pgmemo on a real Citus cluster: a coordinator and two workers started for this module
(citus_cluster.py), pgmemo migrated on the coordinator.

Skipped, with the command that enables them, when Citus is not installed into the embedded
PostgreSQL (`make citus CITUS_SRC=...`; CI passes the vendored tarball). The check that
distribute_domain refuses without Citus runs on the ordinary test server either way.
"""

from __future__ import annotations

import json
import random
import threading

import numpy as np
import psycopg
import pytest

from citus_cluster import ENABLE_HINT, citus_installed, start_cluster, stop_cluster, wait_until
from fake_provider import FakeProvider, fake_vector
from helpers import cli, drain, one
from pgmemo.client import MemoryStore, connect_raw

DIM = 8


@pytest.fixture(scope="module")
def cluster():
    if not citus_installed():
        pytest.skip(ENABLE_HINT)
    c = start_cluster()
    yield c
    stop_cluster(c)


@pytest.fixture
def cconn(cluster):
    c = connect_raw(cluster.dsn)
    yield c
    c.close()


def _worker_conn(node):
    c = connect_raw(node.dsn())
    c.execute("SET citus.enable_manual_changes_to_shards = on")
    return c


def _shards(cluster, conn, table: str):
    """(shard id, a connection to its worker that sees shards) for each shard of table."""
    shards = conn.execute("SELECT shardid, nodeport FROM citus_shards"
                          " WHERE table_name = %s::regclass", (table,)).fetchall()
    by_port = {w.port: w for w in cluster.workers}
    for s in shards:
        with _worker_conn(by_port[s["nodeport"]]) as w:
            w.execute("SET citus.override_table_visibility = off")  # (shards are hidden)
            yield s["shardid"], w


def _placements(conn, table: str) -> dict[int, int]:
    """Shards of table per worker port."""
    rows = conn.execute(
        "SELECT nodeport, count(*) AS n FROM citus_shards WHERE table_name = %s::regclass"
        " GROUP BY nodeport", (table,)).fetchall()
    return {r["nodeport"]: r["n"] for r in rows}


def test_distribute_domain_refused_without_citus(conn):
    conn.execute("SELECT memory.create_domain('solo', 3)")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="needs the Citus extension"):
        conn.execute("SELECT memory.distribute_domain('solo')")
    # nothing changed: still a plain domain with its queue triggers
    assert one(conn, "SELECT distributed FROM memory_private.domains WHERE domain = 'solo'") is False
    assert one(conn, "SELECT count(*) FROM pg_trigger WHERE tgrelid ="
                     " 'memory_data.solo_memories'::regclass AND NOT tgisinternal") == 4


def test_whole_api_on_a_distributed_domain(cluster, cconn, provider):
    c = cconn
    s = MemoryStore.connect(cluster.dsn, embedder=None)
    try:
        s.create_domain("api", dimension=DIM)
        # Rows stored before distribution: one embedded, one waiting in the queue.
        before_e = s.store("before, embedded", domain="api", embedding=fake_vector("before", DIM))
        before_q = s.store("before, queued", domain="api")
        assert c.execute("SELECT memory.distribute_domain('api', 8) AS t").fetchone()["t"] == \
            "memory_data.api_memories"
        assert one(c, "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid ="
                      " 'memory_data.api_memories'::regclass") == 8
        assert len(_placements(c, "memory_data.api_memories")) == 2  # both workers hold shards
        # idempotent
        c.execute("SELECT memory.distribute_domain('api', 8)")
        assert one(c, "SELECT rows FROM memory.domains WHERE domain = 'api'") == 2
        assert s.get(before_e, domain="api")["has_embedding"] is True
        assert one(c, "SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'api'") == 1

        # store / store_many / get / get_many
        a = s.store("alpha apples orchard", domain="api", metadata={"tenant": "t1", "n": 1})
        ids = s.store_many(["beta bananas", "gamma grapes", "delta dates"], domain="api",
                           metadatas=[{"tenant": "t1"}, {"tenant": "t2"}, {"tenant": "t2"}])
        upserted = s.store("epsilon elderberries", domain="api", id="fixed-id",
                           embedding=fake_vector("epsilon elderberries", DIM))
        assert upserted == "fixed-id"
        got = c.execute("SELECT id FROM memory.get_many('api', %s)", ([ids[2], a],)).fetchall()
        assert {r["id"] for r in got} == {ids[2], a}
        # every row without an embedding has exactly one job: the write functions queue them
        queued = {r["row_id"] for r in c.execute(
            "SELECT row_id FROM memory_private.embedding_queue WHERE domain = 'api'")}
        assert queued == {before_q, a, *ids}
        assert one(c, "SELECT queued_jobs FROM memory.embedding_coverage WHERE domain = 'api'") == 5
        assert one(c, "SELECT pending FROM memory.queue_status WHERE domain = 'api'") == 5

        # the worker drains the queue (claims on the coordinator, reads/writes routed by id)
        drain(cluster.dsn, provider, domain="api")
        cov = one(c, "SELECT coverage_pct FROM memory.embedding_coverage WHERE domain = 'api'")
        assert float(cov) == 100.0
        assert one(c, "SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'api'") == 0

        # update: content change clears the embedding (never stale) and queues; metadata alone does not
        assert s.update(a, domain="api", metadata={"tenant": "t1", "n": 2}) is True
        assert s.get(a, domain="api")["has_embedding"] is True
        assert one(c, "SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 'api'") == 0
        assert s.update(a, domain="api", content="alpha apricots orchard") is True
        assert s.get(a, domain="api")["has_embedding"] is False
        assert [r["row_id"] for r in c.execute(
            "SELECT row_id FROM memory_private.embedding_queue WHERE domain = 'api'")] == [a]
        # store with the same id and new content: the same rule
        s.store("epsilon eggplants", domain="api", id="fixed-id")
        assert s.get("fixed-id", domain="api")["has_embedding"] is False
        # a write that bypasses pgmemo: the shard trigger still clears the stale vector...
        c.execute("UPDATE memory_data.api_memories SET content = 'beta blueberries' WHERE id = %s",
                  (ids[0],))
        assert s.get(ids[0], domain="api")["has_embedding"] is False
        # ...and the backfill sweep (run_maintenance, every worker minute) queues it
        c.execute("INSERT INTO memory_data.api_memories (id, content) VALUES ('raw', 'raw insert')")
        assert one(c, "SELECT memory.enqueue_missing('api')") == 2
        assert one(c, "SELECT memory.enqueue_missing('api')") == 0
        diag = s.diagnose("api")
        assert [d["check_name"] for d in diag if d["severity"] == "error"] == []
        drain(cluster.dsn, provider, domain="api")
        assert one(c, "SELECT missing_rows FROM memory.embedding_coverage WHERE domain = 'api'") == 0

        # forget removes the row and its job
        s.store("zeta to forget", domain="api", id="gone")
        assert s.forget("gone", domain="api") is True
        assert s.forget("gone", domain="api") is False
        assert one(c, "SELECT count(*) FROM memory_private.embedding_queue WHERE row_id = 'gone'") == 0

        # search, with filter and min_similarity; text; hybrid
        q = fake_vector("alpha apricots orchard", DIM)
        hits = s.search(q, domain="api", k=3)
        assert hits[0]["id"] == a and hits[0]["similarity"] == pytest.approx(1.0)
        assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
        t2 = s.search(q, domain="api", k=10, filter={"tenant": "t2"})
        assert {h["id"] for h in t2} == {ids[1], ids[2]}
        strong = c.execute("SELECT id FROM memory.search('api', %s, 10, min_similarity => 0.999)",
                           (np.array(q, dtype=np.float32),)).fetchall()
        assert [r["id"] for r in strong] == [a]
        text = s.search_text("grapes", domain="api")
        assert [h["id"] for h in text] == [ids[1]]
        hyb = s.search_hybrid("apricots", q, domain="api", k=3)
        assert hyb[0]["id"] == a
        # import_rows (idempotent batch with own ids)
        r = c.execute("SELECT * FROM memory.import_rows('api', ARRAY['i1', 'i2'],"
                      " ARRAY['imported one', 'imported two'])").fetchone()
        assert (r["inserted"], r["updated"]) == (2, 0)
        assert one(c, "SELECT count(*) FROM memory_private.embedding_queue"
                      " WHERE domain = 'api' AND row_id IN ('i1', 'i2')") == 2
        r = c.execute("SELECT * FROM memory.import_rows('api', ARRAY['i1', 'i2'],"
                      " ARRAY['imported one', 'imported two'])").fetchone()
        assert (r["inserted"], r["updated"], r["unchanged"]) == (0, 0, 2)
        # explain_search sees every shard's HNSW index and the pushed-down LIMIT
        ex = s.explain_search("api", k=5)
        assert ex["uses_index"] is True and ex["index_name"] == "api_memories_hnsw"
        dom = c.execute("SELECT * FROM memory.domains WHERE domain = 'api'").fetchone()
        assert dom["rows"] == one(c, "SELECT count(*) FROM memory_data.api_memories")
    finally:
        s.close()


def test_domain_distributed_by_hand_is_taken_over(cluster, cconn):
    c = cconn
    c.execute("SELECT memory.create_domain('hand', %s)", (DIM,))
    c.execute("SELECT memory.store('hand', 'before')")
    with c.transaction():  # what a user might do instead of memory.distribute_domain
        for kind in ("enqueue_insert", "enqueue_update", "dequeue_delete"):
            t = f"pgmemo_hand_{kind}"
            c.execute(f"DROP TRIGGER {t} ON memory_data.hand_memories")
        c.execute("SET LOCAL citus.enable_unsafe_triggers = on")
        c.execute("SELECT create_distributed_table('memory_data.hand_memories', 'id', shard_count => 4)")
    found = {d["check_name"]: d for d in c.execute("SELECT * FROM memory.diagnose('hand')")}
    bad = found["distributed_outside_pgmemo"]
    assert bad["severity"] == "error" and "not queued" in bad["detail"]
    assert bad["fix_sql"] == "SELECT memory.distribute_domain('hand');"
    c.execute(bad["fix_sql"])
    assert one(c, "SELECT distributed FROM memory_private.domains WHERE domain = 'hand'") is True
    rid = one(c, "SELECT memory.store('hand', 'after')")
    assert one(c, "SELECT count(*) FROM memory_private.embedding_queue WHERE row_id = %s", (rid,)) == 1
    assert "distributed_outside_pgmemo" not in [
        d["check_name"] for d in c.execute("SELECT * FROM memory.diagnose('hand')")]


def test_stale_completion_and_single_claim_on_a_distributed_domain(cluster, cconn):
    c = cconn
    c.execute("SELECT memory.create_domain('race', %s)", (DIM,))
    c.execute("SELECT memory.distribute_domain('race', 4)")
    c.execute("SELECT memory.store_many('race', ARRAY['one', 'two', 'three', 'four'])")
    a, b = connect_raw(cluster.dsn), connect_raw(cluster.dsn)
    try:
        # two workers claiming at once (two open transactions) never get one job twice
        with a.transaction(), b.transaction():
            ja = a.execute("SELECT * FROM memory.claim_embedding_jobs(2, 'a', only_domain => 'race')"
                           ).fetchall()
            jb = b.execute("SELECT * FROM memory.claim_embedding_jobs(10, 'b', only_domain => 'race')"
                           ).fetchall()
        assert len(ja) == 2 and len(jb) == 2
        assert not {j["job_id"] for j in ja} & {j["job_id"] for j in jb}
        # content changes while a's job is in flight: a's vector for the old text is not written
        job = ja[0]
        c.execute("SELECT memory.update('race', %s, content => 'changed meanwhile')", (job["row_id"],))
        done = one(a, "SELECT memory.complete_embedding_jobs(%s, %s)",
                   ([job["job_id"]], [np.ones(DIM, dtype=np.float32)]))
        assert done == 0
        row = c.execute("SELECT * FROM memory.get('race', %s)", (job["row_id"],)).fetchone()
        assert row["has_embedding"] is False and row["content"] == "changed meanwhile"
        assert one(c, "SELECT status FROM memory_private.embedding_queue WHERE job_id = %s",
                   (job["job_id"],)) == "pending"
        # the unchanged one is written
        other = ja[1]
        assert one(a, "SELECT memory.complete_embedding_jobs(%s, %s)",
                   ([other["job_id"]], [np.ones(DIM, dtype=np.float32)])) == 1
    finally:
        a.close()
        b.close()


def test_claim_of_a_distributed_domain_locks_its_table_before_its_jobs(cluster, cconn):
    """drop_domain takes the table, then deletes the jobs: a claim must take the table before it
    locks a job (it locked the jobs, then waited for the table: a deadlock with drop_domain)."""
    c = cconn
    c.execute("SELECT memory.create_domain('lockord', %s)", (DIM,))
    c.execute("SELECT memory.distribute_domain('lockord', 2)")
    c.execute("SELECT memory.store_many('lockord', ARRAY['one', 'two'])")
    holder, claimer, probe = (connect_raw(cluster.dsn) for _ in range(3))
    result: dict = {}
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE memory_data.lockord_memories IN ACCESS EXCLUSIVE MODE")
        pid = one(claimer, "SELECT pg_backend_pid()")

        def claim() -> None:
            try:
                result["jobs"] = claimer.execute(
                    "SELECT * FROM memory.claim_embedding_jobs(10, 'w', only_domain => 'lockord')"
                ).fetchall()
            except Exception as exc:  # noqa: BLE001 - asserted below
                result["error"] = exc

        t = threading.Thread(target=claim, daemon=True)
        t.start()
        # It waits for the table: on the coordinator (a lock not granted) or, where Citus
        # takes the shards' locks first, on a worker (wait event "Extension": the remote call).
        wait_until(lambda: one(c, "SELECT count(*) FROM pg_catalog.pg_stat_activity AS a "
                                  "WHERE a.pid = %s AND a.state = 'active' "
                                  "AND a.wait_event_type IN ('Lock', 'Extension')", (pid,)) > 0)
        # While it waits, it holds none of the domain's jobs.
        probe.execute("BEGIN")
        locked = probe.execute(
            "SELECT job_id FROM memory_private.embedding_queue WHERE domain = 'lockord' "
            "FOR UPDATE SKIP LOCKED").fetchall()
        probe.execute("ROLLBACK")
        assert len(locked) == 2, "the claim locked jobs before the table"
        holder.execute("COMMIT")
        t.join(30)
        assert "error" not in result, result.get("error")
        assert sorted(j["content"] for j in result["jobs"]) == ["one", "two"]
        c.execute("SELECT memory.drop_domain('lockord')")
    finally:
        for x in (holder, claimer, probe):
            x.close()


def test_search_recall_plan_and_settings_reach_the_shards(cluster, cconn):
    c = cconn
    rng = np.random.default_rng(7)
    n, dim = 4000, 32
    data = rng.standard_normal((n, dim)).astype(np.float32)
    c.execute("SELECT memory.create_domain('rec', %s)", (dim,))
    c.execute("SELECT memory.distribute_domain('rec', 4)")
    ids = [f"r{i}" for i in range(n)]
    for lo in range(0, n, 1000):
        c.execute("SELECT count(*) FROM memory.store_many('rec', %s, embeddings => %s, ids => %s)",
                  ([f"doc {i}" for i in range(lo, lo + 1000)], list(data[lo:lo + 1000]),
                   ids[lo:lo + 1000]))
    c.execute("ANALYZE memory_data.rec_memories")
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    queries = rng.standard_normal((30, dim)).astype(np.float32)
    recall = []
    for q in queries:
        exact = np.argsort(-(unit @ (q / np.linalg.norm(q))))[:10]
        got = [r["id"] for r in c.execute("SELECT id FROM memory.search('rec', %s, 10)", (q,))]
        recall.append(len({ids[i] for i in exact} & set(got)) / 10)
    assert np.mean(recall) >= 0.95, np.mean(recall)

    # the plan: every shard scans its own HNSW index under a pushed-down LIMIT
    ex = c.execute("SELECT * FROM memory.explain_search('rec', 10)").fetchone()
    info = c.execute("SELECT * FROM memory_private._dist_plan_indexes("
                     "memory_private._domain('rec'), %s)", (psycopg.types.json.Jsonb(ex["plan"]),)
                     ).fetchone()
    assert ex["uses_index"] is True
    assert (info["tasks"], info["indexed_tasks"], info["limited_tasks"]) == (4, 4, 4)
    # a filter whose text looks like the query's parameters stays a literal
    ex = c.execute("SELECT * FROM memory.explain_search('rec', 10, filter => %s)",
                   (psycopg.types.json.Jsonb({"x": "$1 $2 $4 '"}),)).fetchone()
    assert '"$1 $2 $4' in json.dumps(ex["plan"])  # (matching no row, shards may pick the GIN index)
    # without pgmemo pushing its settings, the workers plan with their own: set_config on the
    # coordinator alone leaves the shards (1,000 rows each) to sequential scans
    with c.transaction():
        c.execute("SELECT set_config('enable_seqscan', 'off', true)")
        c.execute("SET LOCAL citus.explain_all_tasks = on")
        # (the vector inline: Citus cannot EXPLAIN a parameterised query on the workers)
        literal = "[" + ",".join(str(float(x)) for x in queries[0]) + "]"
        raw = c.execute("EXPLAIN (FORMAT JSON) SELECT id FROM memory_data.rec_memories"
                        f" ORDER BY embedding <=> '{literal}'::vector LIMIT 10").fetchone()
        raw_info = c.execute("SELECT * FROM memory_private._dist_plan_indexes("
                             "memory_private._domain('rec'), %s)",
                             (psycopg.types.json.Jsonb(list(raw.values())[0]),)).fetchone()
    assert raw_info["indexed_tasks"] == 0, "control: the shards did not get enable_seqscan"
    # hnsw.ef_search reaches the shards: k = 300 needs ef_search >= 300 on every shard (a
    # shard's index scan returns at most ef_search rows; the workers' default is 40)
    assert len(c.execute("SELECT id FROM memory.search('rec', %s, 300)", (queries[1],)).fetchall()) == 300
    with c.transaction():
        c.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        c.execute("SET LOCAL enable_seqscan = off")  # a SET LOCAL: reaches the shards
        c.execute("SELECT set_config('hnsw.ef_search', '300', true)")  # set_config: does not
        got = c.execute("SELECT id FROM memory_data.rec_memories ORDER BY embedding <=> %s"
                        " LIMIT 300", (queries[1],)).fetchall()
    assert len(got) <= 4 * 40, "control: without propagation the shards use ef_search 40"
    # the caller's settings are back after the call
    with c.transaction():
        c.execute("SELECT set_config('hnsw.ef_search', '55', true)")
        c.execute("SELECT count(*) FROM memory.search('rec', %s, 10)", (queries[2],))
        assert one(c, "SELECT current_setting('hnsw.ef_search')") == "55"
        assert one(c, "SELECT current_setting('enable_seqscan')") == "on"


def test_reembed_and_cli_on_a_distributed_domain(cluster, cconn, provider):
    c = cconn
    c.execute("SELECT memory.create_domain('re', %s, embedding_model => 'fake-embed')", (DIM,))
    code, out = cli(cluster.dsn, "domain", "distribute", "re", "--shards", "4")
    assert code == 0 and "over 4 shards" in out, out
    c.execute("SELECT memory.store_many('re', ARRAY['one', 'two', 'three'])")
    drain(cluster.dsn, provider, domain="re")
    new_dim = 4
    assert one(c, "SELECT memory.begin_reembed('re', 'fake-embed', %s)", (new_dim,)) == "re__next"
    # writes during the re-embed queue the row for both domains; content changes clear both
    c.execute("SELECT memory.store('re', 'four', id => 'r4')")
    assert {r["domain"] for r in c.execute(
        "SELECT domain FROM memory_private.embedding_queue WHERE row_id = 'r4'")} == {"re", "re__next"}
    drain(cluster.dsn, provider, domain="re")
    new = FakeProvider(dim=new_dim)
    try:
        drain(cluster.dsn, new, domain="re__next")
        st = c.execute("SELECT * FROM memory.reembed_status('re')").fetchone()
        assert st["missing_rows"] == 0 and st["total_rows"] == 4
        c.execute("SELECT memory.update('re', 'r4', content => 'four, changed')")
        st = c.execute("SELECT * FROM memory.reembed_status('re')").fetchone()
        assert st["missing_rows"] == 1  # the shadow vector of the old text is gone too
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            c.execute("SELECT memory.finish_reembed('re')")
        drain(cluster.dsn, new, domain="re__next")
        drain(cluster.dsn, provider, domain="re")
    finally:
        new.close()
    res = one(c, "SELECT memory.finish_reembed('re')")
    assert res["dimension"] == new_dim and res["rows"] == 4
    hits = c.execute("SELECT content FROM memory.search('re', %s, 1)",
                     (np.array(fake_vector("four, changed", new_dim), dtype=np.float32),)).fetchall()
    assert hits[0]["content"] == "four, changed"
    assert one(c, "SELECT uses_index FROM memory.explain_search('re', 3)") is True
    assert one(c, "SELECT count(*) FROM memory_private.domains WHERE domain = 're__next'") == 0
    # cancel works too
    c.execute("SELECT memory.begin_reembed('re', 'other', 3)")
    c.execute("SELECT memory.cancel_reembed('re')")
    assert one(c, "SELECT count(*) FROM memory_private.embedding_queue WHERE domain = 're__next'") == 0
    assert [d for d in c.execute("SELECT * FROM memory.diagnose('re')") if d["severity"] == "error"] == []


def test_bulk_load_on_a_distributed_domain(cluster, cconn):
    c = cconn
    c.execute("SELECT memory.create_domain('bulk', %s)", (DIM,))
    c.execute("SELECT memory.distribute_domain('bulk', 4)")
    dropped = one(c, "SELECT memory.bulk_load_begin('bulk')")
    assert "memory_data.bulk_memories_hnsw" in dropped
    with c.cursor().copy("COPY memory_data.bulk_memories (id, content) FROM STDIN") as cp:
        for i in range(500):
            cp.write_row((f"b{i}", f"bulk row {i}"))
    res = one(c, "SELECT memory.bulk_load_finish('bulk')")
    assert res["queued_rows"] == 500
    assert one(c, "SELECT ready FROM memory.queue_status WHERE domain = 'bulk'") == 500
    shards = c.execute("SELECT * FROM memory_private._shard_vector_indexes(memory_private._domain('bulk'))"
                       ).fetchall()
    assert len(shards) == 4 and all(len(s["indexes"]) == 1 for s in shards)
    assert [d for d in c.execute("SELECT * FROM memory.diagnose('bulk')") if d["severity"] == "error"] == []


def test_diagnose_shard_indexes_and_repair(cluster, cconn):
    c = cconn
    c.execute("SELECT memory.create_domain('diag', %s)", (DIM,))
    c.execute("SELECT memory.distribute_domain('diag', 4)")
    c.execute("SELECT memory.store_many('diag', ARRAY['a', 'b', 'c'], embeddings => %s)",
              ([np.ones(DIM, dtype=np.float32)] * 3,))
    assert [d["check_name"] for d in c.execute("SELECT * FROM memory.diagnose('diag')")
            if d["check_name"].startswith("shard")] == []
    shards = c.execute("SELECT shardid, shard_name, nodeport FROM citus_shards"
                       " WHERE table_name = 'memory_data.diag_memories'::regclass ORDER BY shardid"
                       ).fetchall()
    by_port = {w.port: w for w in cluster.workers}
    # one shard loses its HNSW index, another gets one with other settings
    lost, other = shards[0], shards[1]
    with _worker_conn(by_port[lost["nodeport"]]) as w:
        w.execute(f"DROP INDEX memory_data.diag_memories_hnsw_{lost['shardid']}")
    with _worker_conn(by_port[other["nodeport"]]) as w:
        w.execute(f"DROP INDEX memory_data.diag_memories_hnsw_{other['shardid']}")
        w.execute(f"CREATE INDEX diag_memories_hnsw_{other['shardid']} ON {other['shard_name']}"
                  " USING hnsw (embedding vector_cosine_ops) WITH (m = 8, ef_construction = 32)")
    found = {d["check_name"]: d for d in c.execute("SELECT * FROM memory.diagnose('diag')")}
    assert found["shard_missing_index"]["severity"] == "error"
    assert lost["shard_name"] in found["shard_missing_index"]["detail"]
    assert found["shard_index_settings_differ"]["severity"] == "warning"
    assert "m=8" in found["shard_index_settings_differ"]["detail"]
    fix = found["shard_missing_index"]["fix_sql"]
    assert fix == "SELECT memory.repair_shard_indexes('diag');"
    assert one(c, fix) == 2
    assert one(c, fix) == 0  # idempotent
    assert [d["check_name"] for d in c.execute("SELECT * FROM memory.diagnose('diag')")
            if d["check_name"].startswith("shard")] == []
    # connections: 2 shards per worker, Citus caches 1 per worker by default
    cache = found["citus_connection_cache"]
    assert cache["severity"] == "warning" and "up to 2 connections per worker" in cache["detail"]
    assert cache["fix_sql"] == "ALTER DATABASE pgmemo SET citus.max_cached_conns_per_worker = 2;"
    c.execute(cache["fix_sql"])
    try:
        with connect_raw(cluster.dsn) as fresh:
            assert "citus_connection_cache" not in [
                d["check_name"] for d in fresh.execute("SELECT * FROM memory.diagnose('diag')")]
    finally:
        c.execute("ALTER DATABASE pgmemo RESET citus.max_cached_conns_per_worker")
    for s in c.execute("SELECT * FROM memory_private._shard_vector_indexes(memory_private._domain('diag'))"):
        (idx,) = s["indexes"]
        assert idx["name"] == f"diag_memories_hnsw_{s['shard_id']}"
        assert sorted(idx["options"]) == ["ef_construction=64", "m=16"]


def test_rebalance_while_searching(cluster, cconn):
    c = cconn
    w1, w2 = cluster.workers
    # all shards on worker 1, then worker 2 takes its share while searches run
    c.execute("SELECT citus_set_node_property('127.0.0.1', %s, 'shouldhaveshards', false)", (w2.port,))
    try:
        c.execute("SELECT memory.create_domain('reb', %s)", (DIM,))
        # 6 shards: no other table here has 6, so Citus makes a new co-location group for it
        # (a table with an existing group's shard count is placed like that group)
        c.execute("SELECT memory.distribute_domain('reb', 6)")
    finally:
        c.execute("SELECT citus_set_node_property('127.0.0.1', %s, 'shouldhaveshards', true)", (w2.port,))
    assert _placements(c, "memory_data.reb_memories") == {w1.port: 6}
    texts = [f"memory number {i}" for i in range(400)]
    c.execute("SELECT count(*) FROM memory.store_many('reb', %s, embeddings => %s)",
              (texts, [np.array(fake_vector(t, DIM), dtype=np.float32) for t in texts]))
    probes = random.Random(3).sample(texts, 20)

    stop = threading.Event()
    results = {"ok": 0, "errors": []}

    def searcher():
        with connect_raw(cluster.dsn) as s:
            i = 0
            while not stop.is_set():
                t = probes[i % len(probes)]
                i += 1
                try:
                    top = s.execute("SELECT content FROM memory.search('reb', %s, 1)",
                                    (np.array(fake_vector(t, DIM), dtype=np.float32),)).fetchone()
                    assert top["content"] == t, (t, top)
                    results["ok"] += 1
                except Exception as e:  # noqa: BLE001 - collected and asserted below
                    results["errors"].append(repr(e))

    th = threading.Thread(target=searcher)
    th.start()
    try:
        wait_until(lambda: results["ok"] >= 5)
        c.execute("SELECT citus_rebalance_start(shard_transfer_mode => 'force_logical')")
        c.execute("SELECT citus_rebalance_wait()")
        wait_until(lambda: results["ok"] >= 5)
    finally:
        stop.set()
        th.join(60)
    assert results["errors"] == []
    assert results["ok"] > 10
    moved = _placements(c, "memory_data.reb_memories")
    assert moved.get(w1.port, 0) == 3 and moved.get(w2.port, 0) == 3, moved
    assert one(c, "SELECT count(*) FROM memory_data.reb_memories") == 400
    assert [d for d in c.execute("SELECT * FROM memory.diagnose('reb')") if d["severity"] == "error"] == []


def test_worker_stopped_mid_search(cluster, cconn):
    c = cconn
    c.execute("SELECT memory.create_domain('down', %s)", (DIM,))
    c.execute("SELECT memory.distribute_domain('down', 4)")
    texts = [f"row {i}" for i in range(100)]
    c.execute("SELECT count(*) FROM memory.store_many('down', %s, embeddings => %s)",
              (texts, [np.array(fake_vector(t, DIM), dtype=np.float32) for t in texts]))
    w2 = cluster.workers[1]
    shard = c.execute("SELECT shard_name FROM citus_shards WHERE table_name ="
                      " 'memory_data.down_memories'::regclass AND nodeport = %s LIMIT 1",
                      (w2.port,)).fetchone()["shard_name"]
    # Step 1: a lock on one of worker 2's shards holds the next search there, mid-flight.
    blocker = _worker_conn(w2)
    blocker.autocommit = False
    blocker.execute(f"LOCK TABLE {shard} IN ACCESS EXCLUSIVE MODE")
    outcome = {}

    def search():
        with connect_raw(cluster.dsn) as s:
            try:
                outcome["rows"] = s.execute("SELECT id FROM memory.search('down', %s, 5)",
                                            (np.ones(DIM, dtype=np.float32),)).fetchall()
            except psycopg.Error as e:
                outcome["error"] = e

    th = threading.Thread(target=search)
    th.start()
    # Step 2: wait until the search's shard query waits for that lock on worker 2.
    with connect_raw(w2.dsn()) as watch:
        wait_until(lambda: one(watch, "SELECT count(*) FROM pg_locks WHERE NOT granted"
                                      " AND relation = %s::regclass", (shard,)) > 0)
    # Step 3: worker 2 goes down (immediate: like a crash) while the search is in flight.
    w2.stop("immediate")
    blocker.close()
    try:
        th.join(60)
        assert not th.is_alive()
        assert "rows" not in outcome
        err = outcome["error"]
        print("search on a stopped worker:", type(err).__name__, err)
        assert "127.0.0.1" in str(err) and str(w2.port) in str(err) or "connection" in str(err).lower(), err
        # the next search fails fast with the same clear cause; diagnose names the fix
        with pytest.raises(psycopg.OperationalError):
            c.execute("SELECT id FROM memory.search('down', %s, 5)", (np.ones(DIM, dtype=np.float32),))
        diag = c.execute("SELECT * FROM memory.diagnose('down')").fetchall()
        down = [d for d in diag if d["check_name"] == "worker_unreachable"]
        assert len(down) == 1 and down[0]["severity"] == "error"
        assert str(w2.port) in down[0]["detail"] and "Start its PostgreSQL server" in down[0]["detail"]
        assert down[0]["fix_sql"] == f"SELECT citus_check_connection_to_node('127.0.0.1', {w2.port});"
        # maintenance goes on for everything else (the sweep skips this domain with a warning)
        res = one(c, "SELECT memory.run_maintenance()")
        assert "released_claims" in res
        # a row on worker 1's shards can still be read and written
        on_w1 = c.execute("SELECT s.shardid FROM citus_shards AS s WHERE s.table_name ="
                          " 'memory_data.down_memories'::regclass AND s.nodeport = %s",
                          (cluster.workers[0].port,)).fetchall()
        assert on_w1
    finally:
        w2.start()
    # Step 4: back up, nothing lost or corrupted
    wait_until(lambda: one(c, "SELECT citus_check_connection_to_node('127.0.0.1', %s)", (w2.port,)))
    assert one(c, "SELECT count(*) FROM memory_data.down_memories") == 100
    top = c.execute("SELECT content FROM memory.search('down', %s, 1)",
                    (np.array(fake_vector("row 42", DIM), dtype=np.float32),)).fetchone()
    assert top["content"] == "row 42"
    assert [d for d in c.execute("SELECT * FROM memory.diagnose('down')")
            if d["check_name"] == "worker_unreachable"] == []


def test_bench_citus_tiny_run(cluster, tmp_path):
    """bench/citus.py (make bench-citus) on this cluster with tiny sizes, so it cannot rot."""
    import argparse
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "citus.py"
    spec = importlib.util.spec_from_file_location("bench_citus", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = argparse.Namespace(rows=600, dim=16, shards=4, queries=12, write_rows=200,
                              fanout="1,4", fanout_rows=200, no_write=True)
    out = bench.run(cluster, args)
    assert out["search"]["cluster"]["recall_at_10"] >= 0.9
    assert out["search"]["cluster_uses_index_on_every_shard"] is True
    assert out["writes"]["cluster"]["backfill_rows_per_s"] > 0
    assert set(out["fanout"]["p50_ms"]) == {1, 4}
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Other\n\ntext\n")
    bench.write_section(out, md)
    bench.write_section(out, md)  # replaces its section, once
    text = md.read_text()
    assert text.count("## Citus: single node against") == 1 and "## Other" in text
    assert "ms per shard" in text


def test_repair_shard_indexes_when_the_index_name_is_taken(cluster, cconn):
    """repair_shard_indexes runs one statement at a time on the shard's worker: a shard with two
    vector indexes gets exactly one, and when another relation on that worker already has the
    name Citus gives a shard's index, PostgreSQL picks a name instead of the repair failing."""
    c = cconn
    c.execute("SELECT memory.create_domain('taken', %s)", (DIM,))
    c.execute("SELECT memory.distribute_domain('taken', 2)")
    shards = c.execute("SELECT shardid, shard_name, nodeport FROM citus_shards"
                       " WHERE table_name = 'memory_data.taken_memories'::regclass ORDER BY shardid"
                       ).fetchall()
    by_port = {w.port: w for w in cluster.workers}
    first, second = shards
    name = f"taken_memories_hnsw_{first['shardid']}"
    with _worker_conn(by_port[first["nodeport"]]) as w:
        w.execute(f"DROP INDEX memory_data.{name}")
        w.execute("CREATE TABLE memory_data.stray (x int)")
        w.execute(f"CREATE INDEX {name} ON memory_data.stray (x)")
    with _worker_conn(by_port[second["nodeport"]]) as w:
        w.execute(f"CREATE INDEX taken_second_ip ON {second['shard_name']}"
                  " USING hnsw (embedding vector_ip_ops)")
    try:
        assert one(c, "SELECT memory.repair_shard_indexes('taken')") == 2
        got = {s["shard_id"]: s["indexes"] for s in c.execute(
            "SELECT * FROM memory_private._shard_vector_indexes(memory_private._domain('taken'))")}
        assert len(got[first["shardid"]]) == 1 and got[first["shardid"]][0]["name"] != name
        assert [i["name"] for i in got[second["shardid"]]] == [
            f"taken_memories_hnsw_{second['shardid']}"]
        assert all(i["opclass"] == "vector_cosine_ops" and i["valid"]
                   for idx in got.values() for i in idx)
        assert one(c, "SELECT memory.repair_shard_indexes('taken')") == 0
    finally:
        with _worker_conn(by_port[first["nodeport"]]) as w:
            w.execute("DROP TABLE memory_data.stray")


def test_write_cost_settings_reach_the_shards(cluster, cconn):
    """Migrations 0022 and 0034 on a cluster: the toast_tuple_target of a distributed domain's table and
    the pending list of its GIN indexes are set through the coordinator and reach every shard
    (what create_domain gives a new domain, and what the migration gives an existing one)."""
    from pathlib import Path

    c = cconn
    c.execute("SELECT memory.create_domain('wcost', %s)", (DIM,))
    c.execute("SELECT memory.distribute_domain('wcost', 4)")
    # as a domain distributed before 0022 had them
    c.execute("ALTER TABLE memory_data.wcost_memories RESET (toast_tuple_target)")
    c.execute("ALTER INDEX memory_data.wcost_memories_fts SET (gin_pending_list_limit = 64)")
    migrations = Path(__file__).resolve().parents[2] / "migrations"
    c.execute((migrations / "0022_write_cost.sql").read_text())
    c.execute((migrations / "0034_gin_pending_list_1mb.sql").read_text())
    assert one(c, "SELECT reloptions FROM pg_class WHERE oid = 'memory_data.wcost_memories'"
                  "::regclass") == ["toast_tuple_target=4080"]
    seen = 0
    for shardid, w in _shards(cluster, c, "memory_data.wcost_memories"):
        assert one(w, "SELECT reloptions FROM pg_class WHERE relname = %s",
                   (f"wcost_memories_{shardid}",)) == ["toast_tuple_target=4080"]
        assert one(w, "SELECT reloptions FROM pg_class WHERE relname = %s",
                   (f"wcost_memories_fts_{shardid}",)) == ["gin_pending_list_limit=1024"]
        seen += 1
    assert seen == 4
    c.execute("SELECT memory.drop_domain('wcost')")


def test_search_text_scores_the_best_estimates_on_a_distributed_domain(cluster, cconn):
    """Stage 2 of search_text scores the max(k, rerank) candidates best by their estimate, on a
    distributed domain too: the look-up of those rows (a join of the candidates with the
    distributed table) must keep their order, or another 20 rows are scored."""
    c = cconn
    c.execute("SELECT memory.create_domain('ordd', 3, text_config => 'simple')")
    c.execute("SELECT memory.distribute_domain('ordd', 8)")
    c.execute("INSERT INTO memory_data.ordd_memories (id, content) "
              "SELECT 'a' || lpad(i::text, 3, '0'), "
              "'apple and a long tail of other words here ' || i "
              "FROM generate_series(1, 60) AS i")
    c.execute("INSERT INTO memory_data.ordd_memories (id, content) VALUES ('z', 'apple')")
    for flt in ["", ", filter => '{\"x\": {\"$exists\": false}}'"]:
        assert one(c, f"SELECT id FROM memory.search_text('ordd', 'apple', 3{flt})") == "z", flt


def test_create_metadata_index_on_a_distributed_domain(cluster, cconn):
    """create_metadata_index on a distributed domain: the index is made through the coordinator
    and reaches every shard, a second call (either name) builds nothing, and a range filter on
    the key is exact across the shards."""
    c = cconn
    c.execute("SELECT memory.create_domain('mdix', %s)", (DIM,))
    c.execute("SELECT memory.distribute_domain('mdix', 4)")
    c.execute("INSERT INTO memory_data.mdix_memories (id, content, metadata) "
              "SELECT 'r' || i, 'row ' || i, jsonb_build_object('n', i) "
              "FROM generate_series(1, 200) AS i")
    name = one(c, "SELECT memory.create_metadata_index('mdix', 'n', 'number')")
    assert one(c, "SELECT memory.create_metadata_index('mdix', 'n', 'number')") == name
    assert one(c, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'memory_data' "
                  "AND tablename = 'mdix_memories' AND indexname = %s", (name,)) == 1
    seen = 0
    for shardid, w in _shards(cluster, c, "memory_data.mdix_memories"):
        assert one(w, "SELECT count(*) FROM pg_class WHERE relname = %s",
                   (f"{name}_{shardid}",)) == 1, shardid
        seen += 1
    assert seen == 4
    assert one(c, """SELECT memory.count('mdix', '{"n": {"$gte": 50, "$lt": 60}}')""") == 10
    c.execute("SELECT memory.drop_domain('mdix')")
