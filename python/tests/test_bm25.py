"""BM25 text search against the real server, where pgTAP's single transaction cannot go:
migration 0005 converting an existing domain in place, the text statistics going stale after
committed writes (the statistics collector only sees committed work) and run_maintenance
refreshing them, the embedding write not recomputing the stored tsvector, and the write-cost
benchmark's tiny run (bench/text_write.py)."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path

from conftest import dsn_for
from helpers import one

from pgmemo.client import connect_raw

ROOT = Path(__file__).resolve().parents[2]


def _migration_0005() -> str:
    path = next((ROOT / "migrations").glob("*_text_search.sql"))
    text = path.read_text()
    return text[text.index("DO $migrate$"):]


def test_migration_converts_an_existing_domain_in_place(conn):
    """A domain made before 0005 (expression index, no column) gets the stored column, the same
    index name on it, keeps its rows, and ranks with BM25 afterwards."""
    conn.execute("SELECT memory.create_domain('old', 3)")
    conn.execute("SELECT memory.store_many('old', ARRAY['red apples grow on trees', "
                 "'green apples are sour', 'bananas are yellow'], ids => ARRAY['a', 'b', 'c'])")
    # Put the table back into its pre-0005 shape.
    conn.execute("DROP INDEX memory_data.old_memories_fts")
    conn.execute("ALTER TABLE memory_data.old_memories DROP COLUMN content_tsv")
    conn.execute("CREATE INDEX old_memories_fts ON memory_data.old_memories "
                 "USING gin (to_tsvector('english'::regconfig, content))")
    conn.execute(_migration_0005())
    assert one(conn, "SELECT attgenerated::text FROM pg_attribute WHERE attrelid = "
               "'memory_data.old_memories'::regclass AND attname = 'content_tsv'") == "s"
    assert "(content_tsv)" in one(conn, "SELECT pg_get_indexdef("
                                  "'memory_data.old_memories_fts'::regclass)")
    assert one(conn, "SELECT count(*) FROM memory_data.old_memories") == 3
    ids = [r["id"] for r in conn.execute("SELECT id FROM memory.search_text('old', 'apples')")]
    assert sorted(ids) == ["a", "b"]
    # Running it again changes nothing (IF NOT EXISTS).
    conn.execute(_migration_0005())
    assert one(conn, "SELECT count(*) FROM pg_indexes WHERE tablename = 'old_memories' "
               "AND indexname = 'old_memories_fts'") == 1


def test_stored_tsvector_follows_every_write_path(conn):
    """The stored column equals to_tsvector(content) after store, store_many, update (content,
    metadata, embedding), upsert and the queue's completion. (PostgreSQL would recompute the
    stored column on every UPDATE of a table with a BEFORE ROW UPDATE trigger: domain tables
    have none since migration 0017; bench/text_write.py measures the embedding write.)"""
    conn.execute("SELECT memory.create_domain('gen', 3)")
    conn.execute("SELECT memory.store('gen', 'alpha beta', id => 'g1')")
    conn.execute("SELECT memory.store_many('gen', ARRAY['gamma delta'], ids => ARRAY['g2'])")
    conn.execute("SELECT memory.update('gen', 'g1', content => 'running dogs')")
    conn.execute("SELECT memory.update('gen', 'g1', metadata => '{\"a\": 1}')")
    conn.execute("SELECT memory.update('gen', 'g2', embedding => '[1,0,0]')")
    conn.execute("SELECT memory.store('gen', 'upserted words', id => 'g2')")
    jobs = conn.execute("SELECT job_id FROM memory.claim_embedding_jobs(10)").fetchall()
    conn.execute("SELECT memory.complete_embedding_jobs(%s, %s::vector[])",
                 ([j["job_id"] for j in jobs], ["[0,1,0]"] * len(jobs)))
    assert one(conn, "SELECT count(*) FROM memory_data.gen_memories "
               "WHERE content_tsv IS DISTINCT FROM "
               "to_tsvector('english', content) || $$' dl':1$$::tsvector") == 0
    assert one(conn, "SELECT content_tsv::text FROM memory_data.gen_memories WHERE id = 'g1'") \
        == "' dl':3 'dog':2 'run':1"
    assert [r["id"] for r in conn.execute(
        "SELECT id FROM memory.search_text('gen', 'upserted')")] == ["g2"]


def _wait_for_stats(conn, table: str, live: int) -> None:
    # The statistics collector publishes committed counts at the end of each transaction of
    # the writing backend; a fresh snapshot per query.
    for _ in range(200):
        conn.execute("SELECT pg_stat_clear_snapshot()")
        if one(conn, "SELECT n_live_tup FROM pg_stat_all_tables WHERE relid = %s::regclass",
               (table,)) == live:
            return
        conn.execute("SELECT pg_stat_force_next_flush()")
    got = one(conn, "SELECT n_live_tup FROM pg_stat_all_tables WHERE relid = %s::regclass",
              (table,))
    raise AssertionError(f"statistics of {table} never showed {live} live rows (got {got})")


def test_statistics_go_stale_and_run_maintenance_refreshes_them(conn):
    conn.execute("SELECT memory.create_domain('st', 3)")
    conn.execute("SELECT pg_stat_force_next_flush()")  # the inserts reach the collector first
    conn.execute("SELECT memory.store_many('st', array_agg('note number ' || i)) "
                 "FROM generate_series(1, 100) AS i")
    _wait_for_stats(conn, "memory_data.st_memories", 100)
    assert one(conn, "SELECT memory.refresh_text_stats('st')") == 1
    assert one(conn, "SELECT documents FROM memory_private.text_stats WHERE domain = 'st'") == 100
    conn.execute("SELECT pg_stat_force_next_flush()")
    _wait_for_stats(conn, "memory_data.st_memories", 100)
    assert one(conn, "SELECT memory.refresh_text_stats()") == 0, "fresh statistics are kept"
    # 100 more rows: more than 10% + 50 off.
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT memory.store_many('st', array_agg('memo number ' || i)) "
                 "FROM generate_series(1, 100) AS i")
    _wait_for_stats(conn, "memory_data.st_memories", 200)
    report = one(conn, "SELECT memory.run_maintenance()")
    assert report["text_stats_refreshed"] == 1
    assert one(conn, "SELECT documents FROM memory_private.text_stats WHERE domain = 'st'") == 200
    # A dropped domain's statistics go with it.
    conn.execute("SELECT memory.drop_domain('st')")
    assert one(conn, "SELECT count(*) FROM memory_private.text_stats") == 0


def test_refreshes_of_one_domain_take_turns(conn, dsn):
    """Two refreshes of one domain at once (separate connections, explicit steps): the second
    waits for the first's transaction, then makes the common words' best rows again, neither
    failing on the rows the first wrote nor leaving two sets; a search meanwhile reads the last
    committed set (a common word's best row is found before, during and after)."""
    conn.execute("SELECT memory.create_domain('tt', 3, text_config => 'simple')")
    conn.execute("SELECT memory.store_many('tt', array_agg('common word' || i)) "
                 "FROM generate_series(1, 400) AS i")
    conn.execute("SELECT memory.store('tt', 'common common common', id => 'best')")
    conn.execute("SELECT memory.store('tt', 'rare thing', id => 'r1')")
    conn.execute("SELECT memory.refresh_text_stats('tt')")
    conn.execute("SET pgmemo.bm25_budget = 0")  # 'common' brings only its best rows

    def found() -> bool:
        return "best" in [r["id"] for r in conn.execute(
            "SELECT id FROM memory.search_text('tt', 'common rare', 2)")]
    assert found()
    first, second = connect_raw(dsn), connect_raw(dsn)
    try:
        first.execute("BEGIN")
        first.execute("SELECT memory.refresh_text_stats('tt')")
        pid = one(second, "SELECT pg_backend_pid()")
        errors: list[BaseException] = []

        def run() -> None:
            try:
                second.execute("SELECT memory.refresh_text_stats('tt')")
            except BaseException as exc:  # noqa: BLE001 - checked below
                errors.append(exc)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        end = time.monotonic() + 20
        while not one(conn, "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted)",
                      (pid,)):
            assert time.monotonic() < end, "the second refresh never waited"
            time.sleep(0.02)
        assert found(), "a search during the refresh reads the committed best rows"
        first.execute("COMMIT")
        t.join(30)
        assert not t.is_alive() and not errors, errors
    finally:
        first.close()
        second.close()
    assert found()
    assert one(conn, "SELECT count(*) = count(DISTINCT lexeme) AND count(*) > 0 "
               "FROM memory_private.text_top WHERE domain = 'tt'")
    assert one(conn, "SELECT ids[1] FROM memory_private.text_top "
               "WHERE domain = 'tt' AND lexeme = 'common'") == "best"


def test_best_rows_changed_since_the_refresh_do_not_match_the_query(conn):
    """A common word's best rows (memory_private.text_top) are as of the last refresh: a row
    whose content changed since so that it holds no word of the query is not a result (the
    postings of the index, the candidates before text_top, never brought such a row; it came
    back with rank 0, ahead of nothing but filling up k)."""
    conn.execute("SELECT memory.create_domain('sb', 3, text_config => 'simple')")
    conn.execute("INSERT INTO memory_data.sb_memories (id, content) "
                 "SELECT 'c' || i, 'common word' || i FROM generate_series(1, 2500) AS i")
    conn.execute("INSERT INTO memory_data.sb_memories (id, content) "
                 "SELECT 't' || i, 'common common common' FROM generate_series(1, 100) AS i")
    conn.execute("INSERT INTO memory_data.sb_memories (id, content) "
                 "VALUES ('r1', 'rare common'), ('r2', 'rare')")
    conn.execute("SELECT memory.refresh_text_stats('sb')")
    assert one(conn, "SELECT ids[1] FROM memory_private.text_top "
               "WHERE domain = 'sb' AND lexeme = 'common'") == "t1"
    conn.execute("UPDATE memory_data.sb_memories SET content = 'nothing here' "
                 "WHERE id LIKE 't%'")
    for sql in ["SELECT id, rank FROM memory.search_text('sb', 'common rare', 5)",
                "SELECT id, rank FROM memory.search_text('sb', 'word7 common', 5)"]:
        rows = conn.execute(sql).fetchall()
        assert all(r["rank"] > 0 for r in rows), rows
        assert not [r["id"] for r in rows if r["id"].startswith("t")], rows


def test_search_text_ranks_the_best_estimates_whatever_the_join(conn):
    """Stage 2 scores the best max(k, rerank) candidates by their estimate: which ones must not
    depend on the join the planner picks for their look-up (a session may turn nested loops
    off; a hash or merge join returns the rows in another order than the estimates')."""
    conn.execute("SELECT memory.create_domain('oj', 3, text_config => 'simple')")
    conn.execute("INSERT INTO memory_data.oj_memories (id, content) "
                 "SELECT 'a' || lpad(i::text, 3, '0'), "
                 "'apple and a long tail of other words here ' || i "
                 "FROM generate_series(1, 60) AS i")
    conn.execute("INSERT INTO memory_data.oj_memories (id, content) VALUES ('z', 'apple')")
    best = "SELECT id FROM memory.search_text('oj', 'apple', 3{})"
    for flt in ["", ", filter => '{\"x\": {\"$exists\": false}}'"]:
        assert one(conn, best.format(flt)) == "z"
    conn.execute("SET enable_nestloop = off")
    conn.execute("SET enable_hashjoin = off")
    for flt in ["", ", filter => '{\"x\": {\"$exists\": false}}'"]:
        assert one(conn, best.format(flt)) == "z", flt


def test_refresh_sorts_the_best_rows_without_their_content(conn):
    """The refresh's pass for the common words' best rows sorts one tuple per row and common
    lexeme of it: the content must not travel with each (2,000 rows of 1.7 kB holding 150
    common words each wrote about 500 MB of temporary files, 200 times the data, so a server's
    temp_file_limit failed the refresh and left the statistics stale)."""
    conn.execute("SELECT memory.create_domain('wd', 3, text_config => 'simple')")
    conn.execute("SELECT setseed(0.1)")
    conn.execute("""
        INSERT INTO memory_data.wd_memories (id, content)
        SELECT 'w' || i, (SELECT string_agg(md5(random()::text || g), ' ')
                FROM generate_series(1, 30) AS g WHERE i > 0)
            || ' ' || (SELECT string_agg('v' || (g * 7 + i) % 300, ' ')
                FROM generate_series(1, 150) AS g)
        FROM generate_series(1, 2000) AS i""")
    conn.execute("SET temp_file_limit = '40MB'")
    assert one(conn, "SELECT memory.refresh_text_stats('wd')") == 1
    assert one(conn, "SELECT count(*) FROM memory_private.text_top WHERE domain = 'wd'") == 300


def test_searches_without_best_rows_keep_their_candidates(conn):
    """Filtered searches, and queries with a required part (here an -exclusion), take no best
    rows of the common words (memory_private.text_top): lowering the default budget from 700 to
    200 for them too left a word in 400 of 3,400 rows out of their candidates, so a filter that
    every row passes returned 1 row of 10 where the same search unfiltered returned 10 (and the
    release before, 10)."""
    conn.execute("SELECT memory.create_domain('fb', 3, text_config => 'simple')")
    conn.execute("INSERT INTO memory_data.fb_memories (id, content, metadata) "
                 "SELECT 'c' || i, 'common word' || i, '{\"t\": \"a\"}' "
                 "FROM generate_series(1, 400) AS i")
    conn.execute("INSERT INTO memory_data.fb_memories (id, content, metadata) "
                 "SELECT 'x' || i, 'other stuff' || i, '{\"t\": \"a\"}' "
                 "FROM generate_series(1, 3000) AS i")
    conn.execute("INSERT INTO memory_data.fb_memories (id, content, metadata) "
                 "VALUES ('r1', 'rare thing', '{\"t\": \"a\"}')")
    conn.execute("SELECT memory.refresh_text_stats('fb')")
    assert one(conn, "SELECT count(*) FROM memory.search_text('fb', 'common rare', 10)") == 10
    assert one(conn, "SELECT count(*) FROM memory.search_text('fb', 'common rare', 10, "
               "filter => '{\"t\": \"a\"}')") == 10
    assert one(conn, "SELECT count(*) FROM memory.search_text('fb', 'common rare -nothing', "
               "10)") == 10


def test_statistics_from_before_the_best_rows_are_refreshed(conn):
    """A domain whose statistics were refreshed before migration 0032 has common words but no
    best rows (memory_private.text_top) until its next refresh, and search_text's lower
    default budget (200, was 700) then drops the rows of a word in 400 of 3,401 rows: the next
    run_maintenance must refresh it (the migration says search_text reads as before until the
    next refresh; a domain without writes was never refreshed again, its searches returning 1
    row of 10 for good)."""
    conn.execute("SELECT memory.create_domain('up', 3, text_config => 'simple')")
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("INSERT INTO memory_data.up_memories (id, content) "
                 "SELECT 'c' || i, 'common word' || i FROM generate_series(1, 400) AS i")
    conn.execute("INSERT INTO memory_data.up_memories (id, content) "
                 "SELECT 'x' || i, 'other stuff' || i FROM generate_series(1, 3000) AS i")
    conn.execute("INSERT INTO memory_data.up_memories (id, content) VALUES ('r1', 'rare thing')")
    _wait_for_stats(conn, "memory_data.up_memories", 3401)
    assert one(conn, "SELECT memory.refresh_text_stats('up')") == 1
    # the state a migrate from 0031 leaves: statistics, no best rows yet
    conn.execute("DELETE FROM memory_private.text_top WHERE domain = 'up'")
    assert one(conn, "SELECT memory.refresh_text_stats()") == 1
    assert one(conn, "SELECT count(*) FROM memory_private.text_top WHERE domain = 'up'") > 0
    assert one(conn, "SELECT count(*) FROM memory.search_text('up', 'common rare', 10)") == 10
    # and once made, not again while nothing changed
    assert one(conn, "SELECT memory.refresh_text_stats()") == 0


def test_search_text_nasty_queries_and_injection(conn):
    conn.execute("SELECT memory.create_domain('nq', 3)")
    conn.execute("SELECT memory.store('nq', $$it's a dog's life: O'Brien\\'s \\\\ back-slash$$, "
                 "id => 'n1')")
    for q in ["O'Brien", "dog's", "back-slash", "\\", "'", "''", '"it\'s a"', "-'", "a:*",
              "it's -life", "x" * 3000]:
        conn.execute("SELECT * FROM memory.search_text('nq', %s)", (q,)).fetchall()
    assert [r["id"] for r in conn.execute("SELECT id FROM memory.search_text('nq', 'brien')")] \
        == ["n1"]


def test_text_write_benchmark_tiny():
    sys.path.insert(0, str(ROOT / "bench"))
    import text_write

    res = text_write.run(True, lambda m: None, admin_dsn=dsn_for("postgres"))
    assert set(res["throughput"]) == {"baseline", "stored_tsvector", "incremental_df"}
    for m in res["throughput"].values():
        assert all(v > 0 for k, v in m.items() if k.endswith("_per_s"))
        # the sustained throughput counts the merge the writes left pending
        assert m["store_queue_sustained_rows_per_s"] > 0 and "store_queue_final_merge_ms" in m
    assert [d["rows_added_after_refresh"] for d in res["drift"]] == [0.1, 0.5]
    # an adopted table ranks as a factory table holding the same rows
    assert res["adopted"]["search_text"]["identical"] == res["adopted"]["queries"]
    assert res["adopted"]["search_hybrid"]["adopted_p50_ms"] > 0
    assert "An adopted table" in text_write.markdown(res)
    assert re.match(r"^## Text search write cost", text_write.markdown(res))


def test_text_write_side_by_side_on_a_small_cache(conn, tmp_path):
    """bench/text_write.py's side by side at 100,000 rows needs bench/corpus.py's cache (absent
    in CI): run it on a small one of the same layout, so that it cannot rot, and check that it
    measures as make eval judges its targets (the pair alone, then search_text alone)."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    import text_write

    rng = np.random.default_rng(3)
    words = ["apple", "river", "stone", "cloud", "paper", "lamp", "glass", "tiger"]
    passages = [" ".join(rng.choice(words, 6)) + f" item{i}" for i in range(60)]
    np.savez(tmp_path / "real_100000_1000.npz", vectors=rng.random((60, 4), dtype=np.float32),
             queries=rng.random((5, 4), dtype=np.float32))
    (tmp_path / "real_100000_1000.texts.json").write_text(json.dumps(
        {"texts": passages, "query_texts": [" ".join(rng.choice(words, 3)) for _ in range(5)]}))
    log: list[str] = []
    res = text_write.side_by_side(conn, tmp_path, 5, log.append)
    assert res is not None and res["rows"] == 60 and res["queries"] == 10  # 5 queries twice
    for mode in ("search", "search_text", "search_hybrid"):
        assert res[mode]["p50_ms"] > 0 and res[mode]["cpu_ms"] is not None
    assert conn.execute("SELECT count(*) FROM memory_private.domains "
                        "WHERE domain = 'scale_h'").fetchone()["count"] == 0  # dropped
    text = "\n".join(text_write.side_by_side_markdown(res))
    assert "Side by side at 60 rows" in text and "alone, interleaved query by query" in text
    assert "| `search_hybrid` |" in text and text_write.side_by_side_markdown(None) == []
    assert text_write.side_by_side(conn, tmp_path / "none", 5, log.append) is None


def test_hybrid_finds_the_rows_waiting_for_their_embedding(conn):
    """A memory stored while the provider is down waits in the queue without an embedding: the
    hybrid finds it by its words beside the vector rows (README), in the domain's one-statement
    branch as on its general path; at most _hybrid_waiting_rows() waiting rows (in id order) are
    read, a bound on the call's cost during a backlog. Once embedded, a vector row."""
    conn.execute("SELECT memory.create_domain('wait', 3)")
    conn.execute("SELECT memory.store_many('wait', "
                 "ARRAY(SELECT 'embedded note number ' || i FROM generate_series(1, 40) AS i), "
                 "embeddings => ARRAY(SELECT ('[1,' || i || ',0]')::vector FROM generate_series(1, 40) AS i))")
    conn.execute("SELECT memory.refresh_text_stats('wait')")
    bound = one(conn, "SELECT memory_private._hybrid_waiting_rows() AS n")
    # bound + 1 rows without an embedding, in id order; the last (beyond the bound) and one
    # inside it hold the word 'zeppelin'
    conn.execute("SELECT memory.store_many('wait', ARRAY(SELECT CASE WHEN i IN (7, %(last)s) "
                 "THEN 'the zeppelin landed ' || i ELSE 'queued filler ' || i END "
                 "FROM generate_series(1, %(last)s) AS i), "
                 "ids => ARRAY(SELECT 'q' || lpad(i::text, 4, '0') FROM generate_series(1, %(last)s) AS i))",
                 {"last": bound + 1})

    conn.execute("SET track_functions = 'pl'")

    def hits(filter_: str | None = None) -> tuple[list[dict], int]:
        """The hybrid's rows, and how often it took its general path for them (the backend's
        function counts not yet reported, before and after, in one transaction)."""
        calls = ("SELECT coalesce(pg_stat_get_xact_function_calls("
                 "'memory_private._hybrid_candidates'::regproc), 0) AS n")
        with conn.transaction():
            before = one(conn, calls)
            rows = conn.execute("SELECT id, similarity, text_rank, round(score::numeric, 9) AS s "
                                "FROM memory.search_hybrid('wait', 'zeppelin', '[1,1,0]', 5, "
                                "filter => %s)", (filter_,)).fetchall()
            general = one(conn, calls) - before
        return rows, general

    rows, general = hits()
    found = {h["id"]: h for h in rows}
    assert "q0007" in found and found["q0007"]["similarity"] is None and found["q0007"]["text_rank"] > 0
    assert f"q{bound + 1:04d}" not in found, "read more waiting rows than the bound"
    assert any(h["similarity"] is not None for h in found.values()), "the vector rows too"
    assert general == 0, "the branch, not the general path"
    general_rows, general = hits("{}")
    assert general == 1 and general_rows == rows, "the general path ranks them alike"
    # embedded (by hand, as a worker would): a vector row now, through the domain's branch
    conn.execute("UPDATE memory_data.wait_memories SET embedding = CASE id WHEN 'q0007' "
                 "THEN '[1,1,0]'::vector ELSE '[0,0,1]' END WHERE id LIKE 'q%%'")
    assert one(conn, "SELECT count(*) AS n FROM memory_private.embedding_queue "
                     "WHERE domain = 'wait'") == 0
    rows, general = hits()
    assert general == 0
    assert {h["id"]: h for h in rows}["q0007"]["similarity"] is not None
