"""BM25 text search against brute force, and its statistics under writes (stop 36's attack review):
rewrites, partitioned and filling adopted tables mark the statistics stale, a stale row count
does not flatten the IDF, scores match BM25 computed from the rows before and after writes,
factory and adopted domains rank alike, edge inputs, a refresh beside open writers.

Brute force: BM25 as sql/31_bm25.sql defines it (k1 1.2, b 0.75, idf ln(1+(N-df+0.5)/(df+0.5))
times the query frequency, dl from the length marker ' dl' (position - 1), avgdl floor 1, the
proximity bonus 0.7 * min(idf) for consecutive query words 1/2/3 positions apart: x1, 1/4, 1/9),
computed in Python from the rows' stored tsvectors."""

from __future__ import annotations

import math
import random
import threading
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from helpers import one, wait_for_lock_wait

# --------------------------------------------------------------------------------------------
# helpers


def _brute(conn, table: str, config: str, query: str, k: int, *, n=None, avgdl=None,
           k1=1.2, b=0.75, prox=0.7):
    """[(id, score)] best first (ties: updated_at DESC, id), over every row of table."""
    q = conn.execute(
        "SELECT u.lexeme, cardinality(u.positions) AS qtf "
        "FROM unnest(to_tsvector(%s::regconfig, %s)) AS u ORDER BY u.positions[1]",
        (config, query)).fetchall()
    words = [r["lexeme"] for r in q]
    qtf = [r["qtf"] for r in q]
    docs: dict[str, dict[str, list[int]]] = {}
    upd = {}
    for r in conn.execute(f"SELECT t.id, t.updated_at, u.lexeme, u.positions FROM {table} AS t "
                          "CROSS JOIN LATERAL unnest(t.content_tsv) AS u").fetchall():
        docs.setdefault(r["id"], {})[r["lexeme"]] = list(r["positions"])
        upd[r["id"]] = r["updated_at"]
    dl = {i: (d[" dl"][0] - 1 if " dl" in d else 0) for i, d in docs.items()}
    n = len(docs) if n is None else n
    avg = (sum(dl.values()) / len(dl) if dl else 0) if avgdl is None else avgdl
    idf = []
    for w, f in zip(words, qtf):
        df = min(max(sum(1 for d in docs.values() if w in d), 1), n)
        idf.append(f * math.log(1 + (n - df + 0.5) / (df + 0.5)))
    out = []
    for i, d in docs.items():
        if not any(w in d for w in words):
            continue
        s = 0.0
        for j, w in enumerate(words):
            if w not in d:
                continue
            tf = len(d[w])
            s += idf[j] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl[i] / max(avg, 1)))
            if prox and j + 1 < len(words) and words[j + 1] in d:
                dist = min(abs(x - y) for x in d[w] for y in d[words[j + 1]])
                wgt = prox * min(idf[j], idf[j + 1])
                s += {1: wgt, 2: wgt / 4, 3: wgt / 9}.get(dist, 0)
        out.append((i, s, upd[i]))
    out.sort(key=lambda r: (-r[1], -(r[2].timestamp() if r[2] else 0), r[0]))
    return [(i, s) for i, s, _ in out[:k]]


def _search(conn, domain, query, k=10, **kw):
    extra = "".join(f", {name} => %({name})s" for name in kw)
    return [(r["id"], r["rank"]) for r in conn.execute(
        f"SELECT id, rank FROM memory.search_text(%(d)s, %(q)s, %(k)s{extra})",
        {"d": domain, "q": query, "k": k, **kw}).fetchall()]


def _wait_stats(conn, table: str, column: str, value: int) -> None:
    """Until pg_stat_all_tables shows column >= value for table (committed work, published by the
    writing backends' flushes)."""
    for _ in range(300):
        conn.execute("SELECT pg_stat_clear_snapshot()")
        got = one(conn, f"SELECT {column} FROM pg_stat_all_tables WHERE relid = %s::regclass",
                  (table,))
        if got is not None and got >= value:
            return
        conn.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(0.02)
    raise AssertionError(f"{table}.{column} never reached {value} (got {got})")


def _stats(conn, domain):
    return conn.execute("SELECT documents, avg_length FROM memory_private.text_stats "
                        "WHERE domain = %s", (domain,)).fetchone()


def _exact(conn):
    """Settings under which search_text should score every candidate exactly."""
    conn.execute("SET pgmemo.bm25_rerank = 10000")
    conn.execute("SET pgmemo.bm25_budget = 1000000")




def test_content_rewrites_mark_text_stats_stale(conn):
    """Rows rewritten in place (memory.update; a re-import's upserts) count as writes of the
    domain's text (_text_writes counts updates): run_maintenance refreshes the statistics, and
    a word that was common and is now in one row is found there, not in its old best rows."""
    conn.execute("SELECT memory.create_domain('rw', 3, text_config => 'simple')")
    conn.execute("SELECT memory.store_many('rw', array_agg('xword filler' || i), "
                 "ids => array_agg('c' || lpad(i::text, 3, '0'))) "
                 "FROM generate_series(1, 400) AS i")
    conn.execute("SELECT memory.store('rw', 'zeta', id => 'z')")
    _wait_stats(conn, "memory_data.rw_memories", "n_live_tup", 401)
    conn.execute("SELECT memory.refresh_text_stats('rw')")
    # a re-import rewrites every row; 'xword' is now in c399 alone
    conn.execute("SELECT memory.update('rw', 'c' || lpad(i::text, 3, '0'), "
                 "content => CASE WHEN i = 399 THEN 'xword' ELSE 'other stuff' || i END) "
                 "FROM generate_series(1, 400) AS i")
    _wait_stats(conn, "memory_data.rw_memories", "n_tup_upd", 400)
    conn.execute("SELECT memory.run_maintenance()")
    ids = [i for i, _ in _search(conn, "rw", "xword zeta", 5)]
    # (after memory.refresh_text_stats('rw') both are found)
    assert sorted(ids) == ["c399", "z"], ids


def test_adopted_partitioned_table_text_stats_go_stale(conn):
    """An adopted partitioned table's writes are counted on its text index (the parent's own
    counters stay 0: its partitions hold them), so run_maintenance refreshes its statistics."""
    conn.execute("CREATE SCHEMA app")
    conn.execute("CREATE TABLE app.p (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3)) "
                 "PARTITION BY RANGE (id)")
    conn.execute("CREATE TABLE app.p1 PARTITION OF app.p FOR VALUES FROM (0) TO (1000000)")
    conn.execute("INSERT INTO app.p SELECT g, 'note ' || g FROM generate_series(1, 100) AS g")
    conn.execute("SELECT memory.adopt_table('pp', 'app.p', 'id', 'body', 'emb')")
    _wait_stats(conn, "app.p1", "n_live_tup", 100)
    conn.execute("SELECT memory.refresh_text_stats('pp')")
    assert _stats(conn, "pp")["documents"] == 100
    conn.execute("INSERT INTO app.p SELECT g, 'fresh row zebra ' || g "
                 "FROM generate_series(101, 1100) AS g")
    _wait_stats(conn, "app.p1", "n_live_tup", 1100)
    conn.execute("SELECT memory.run_maintenance()")
    assert _stats(conn, "pp")["documents"] == 1100  # 10x the rows: stale, must be refreshed


def test_text_stats_taken_mid_fill_are_refreshed_after_the_fill(conn):
    """adopt_table(create_indexes => false) fills the text index in batches; statistics taken over
    a partly filled index (the unfilled rows count as length 0) are refreshed once the fill's
    rows are counted as writes of the text index (published by the statistics collector
    within a second; run_maintenance runs every minute)."""
    conn.execute("CREATE SCHEMA app")
    conn.execute("CREATE TABLE app.docs (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3))")
    conn.execute("INSERT INTO app.docs SELECT g, 'note number ' || g FROM generate_series(1, 300) g")
    _wait_stats(conn, "app.docs", "n_live_tup", 300)
    conn.execute("SELECT memory.adopt_table('fl', 'app.docs', 'id', 'body', 'emb', "
                 "create_indexes => false)")
    assert one(conn, "SELECT memory.fill_text_index('fl', 100)") == 100  # a first batch
    conn.execute("SELECT memory.run_maintenance()")  # refreshes (no stats yet), then fills
    assert one(conn, "SELECT count(*) FROM memory_data.fl_text") == 300
    _wait_stats(conn, "memory_data.fl_text", "n_tup_ins", 300)
    conn.execute("SELECT memory.run_maintenance()")
    kept = _search(conn, "fl", "note number", 5)
    stale = _stats(conn, "fl")
    conn.execute("SELECT memory.refresh_text_stats('fl')")
    fresh = _stats(conn, "fl")
    assert fresh["avg_length"] == 3
    assert stale["avg_length"] == fresh["avg_length"], (stale, fresh)
    assert [r for _, r in kept] == pytest.approx(
        [r for _, r in _search(conn, "fl", "note number", 5)])


def test_stale_row_count_does_not_flatten_idf(conn):
    """After inserts within run_maintenance's tolerance (10% + 50 rows), words in more rows than
    the N of the last refresh keep their order of weight (N is raised to each word's df, not df
    capped at N, which gave them all the same least IDF): the rarer word still wins, as in BM25
    over the rows."""
    conn.execute("SELECT memory.create_domain('cl', 3, text_config => 'simple')")
    conn.execute("SELECT memory.store_many('cl', array_agg('filler ' || i), "
                 "ids => array_agg('f' || i)) FROM generate_series(1, 20) AS i")
    _wait_stats(conn, "memory_data.cl_memories", "n_live_tup", 20)
    conn.execute("SELECT memory.refresh_text_stats('cl')")
    conn.execute("SELECT memory.store('cl', 'alpha alpha alpha', id => 'x')")
    conn.execute("SELECT memory.store('cl', 'beta', id => 'y')")
    conn.execute("SELECT memory.store_many('cl', array_agg('alpha other ' || i)) "
                 "FROM generate_series(1, 27) AS i")
    conn.execute("SELECT memory.store_many('cl', array_agg('beta other ' || i)) "
                 "FROM generate_series(1, 20) AS i")
    _wait_stats(conn, "memory_data.cl_memories", "n_live_tup", 69)
    report = one(conn, "SELECT memory.run_maintenance()")
    assert report["text_stats_refreshed"] == 0  # within the tolerance: kept
    exp = _brute(conn, "memory_data.cl_memories", "simple", "alpha beta", 1)
    assert exp[0][0] == "y"  # beta (21 rows) is rarer than alpha (28 rows)
    got = _search(conn, "cl", "alpha beta", 1)
    assert got[0][0] == "y", (got, exp)


def _corpus(rnd, vocab, n, prefix="r"):
    return [(f"{prefix}{i:04d}", " ".join(rnd.choice(vocab[: rnd.randint(3, len(vocab))])
                                          for _ in range(rnd.randint(0, 30))))
            for i in range(n)]


def _random_domain(conn, domain: str, seed: int, words: int, n: int) -> list[tuple[str, str]]:
    """A refreshed domain (text_config simple) of n rows of random words w0..w{words-1}."""
    conn.execute("SELECT memory.create_domain(%s, 3, text_config => 'simple')", (domain,))
    rows = _corpus(random.Random(seed), [f"w{i}" for i in range(words)], n)
    conn.execute("SELECT memory.store_many(%s, %s, ids => %s)",
                 (domain, [r[1] for r in rows], [r[0] for r in rows]))
    conn.execute("SELECT memory.refresh_text_stats(%s)", (domain,))
    return rows


def test_exact_scores_match_brute_force_before_and_after_writes(conn):
    """With rerank/budget large enough, search_text equals BM25 (+ proximity) computed from the
    rows with the refreshed N and avgdl, before and after inserts, content updates and deletes
    since the refresh (no lost row, no stale score, no row that no longer matches), phrases and
    exclusions included, filtered path (a filter every row passes) identical."""
    rows = _random_domain(conn, "bf", 7, 60, 150)
    rnd, vocab = random.Random(8), [f"w{i}" for i in range(60)]
    st = _stats(conn, "bf")
    _exact(conn)

    def check():
        for _ in range(40):
            q = " ".join(rnd.choice(vocab) for _ in range(rnd.randint(1, 4)))
            exp = _brute(conn, "memory_data.bf_memories", "simple", q, 10,
                         n=st["documents"], avgdl=st["avg_length"])
            for kw in [{}, {"filter": '{"zz": {"$exists": false}}'}]:
                got = _search(conn, "bf", q, 10, **kw)
                assert [g[0] for g in got] == [e[0] for e in exp], (q, kw, got, exp)
                assert [g[1] for g in got] == pytest.approx([e[1] for e in exp]), (q, got, exp)
    check()
    for i in range(40):
        conn.execute("SELECT memory.store('bf', %s, id => %s)",
                     (_corpus(rnd, vocab, 1)[0][1], f"n{i:03d}"))
    for i in rnd.sample(range(150), 40):
        conn.execute("SELECT memory.update('bf', %s, content => %s)",
                     (rows[i][0], _corpus(rnd, vocab, 1)[0][1]))
    for i in rnd.sample(range(150), 40):
        conn.execute("SELECT memory.forget('bf', %s)", (rows[i][0],))
    check()


def test_factory_and_adopted_rank_alike_and_german_config(conn):
    """The same 1,500 rows as a factory domain and as an adopted table: search_text (plain,
    phrases, exclusions, match all, filtered) and search_hybrid give the same rows and scores,
    before and after the same writes; plus a 'german' domain against brute force (umlauts,
    ß, ligatures, URLs, hyphens, quotes, backslashes, colons and commas in the content)."""
    rnd = random.Random(11)
    vocab = ["apple", "river", "stone", "cloud", "running", "runs", "the", "of", "data_type",
             "e-mail", "x.y/z", "O'Brien", "back\\slash", "a:b,c", "naïve", "日本語"] + \
        [f"w{i}" for i in range(200)]
    rows = [(f"r{i:04d}", t, str([rnd.random() + 0.01, rnd.random(), rnd.random()]))
            for i, (_, t) in enumerate(_corpus(rnd, vocab, 1500))]
    conn.execute("SELECT memory.create_domain('fa', 3)")
    conn.execute("SELECT memory.store_many('fa', %s, NULL, %s::vector[], %s)",
                 ([r[1] for r in rows], [r[2] for r in rows], [r[0] for r in rows]))
    conn.execute("CREATE SCHEMA app")
    conn.execute("CREATE TABLE app.docs (id text PRIMARY KEY, body text NOT NULL, emb vector(3),"
                 " updated_at timestamptz)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO app.docs VALUES (%s, %s, %s::vector)", rows)
    conn.execute("SELECT memory.adopt_table('ad', 'app.docs', 'id', 'body', 'emb')")
    conn.execute("SELECT memory.refresh_text_stats('fa')")
    conn.execute("SELECT memory.refresh_text_stats('ad')")

    def same():
        for qi in range(40):
            q = " ".join(rnd.choice(vocab) for _ in range(rnd.randint(1, 4)))
            q = ['"' + q + '" w1', q + " -" + rnd.choice(vocab), q, q + " OR w2"][qi % 4]
            for kw in [{}, {"match": "all"}, {"filter": '{"id": {"$ne": "r0001"}}'}]:
                a = sorted((i, round(s, 9)) for i, s in _search(conn, "fa", q, 10, **kw))
                b = sorted((i, round(s, 9)) for i, s in _search(conn, "ad", q, 10, **kw))
                assert a == b, (q, kw)
    same()
    for i in range(60):
        t = _corpus(rnd, vocab, 1)[0][1]
        conn.execute("SELECT memory.store('fa', %s, id => %s)", (t, f"n{i}"))
        conn.execute("INSERT INTO app.docs (id, body) VALUES (%s, %s)", (f"n{i}", t))
    for i in rnd.sample(range(1500), 60):
        t = _corpus(rnd, vocab, 1)[0][1]
        conn.execute("SELECT memory.update('fa', %s, content => %s)", (f"r{i:04d}", t))
        conn.execute("UPDATE app.docs SET body = %s WHERE id = %s", (t, f"r{i:04d}"))
    for i in rnd.sample(range(1500), 60):
        conn.execute("SELECT memory.forget('fa', %s)", (f"r{i:04d}",))
        conn.execute("DELETE FROM app.docs WHERE id = %s", (f"r{i:04d}",))
    same()
    # german
    conn.execute("SELECT memory.create_domain('de', 3, text_config => 'german')")
    gv = ("Häuser Haus Straße Strasse Bücher Buch und der die das ist nicht Über Ärger Äpfel "
          "Apfel Mädchen laufen läuft gelaufen Fußball ﬁnanz İstanbul x.y/z e-mail 'quoted' "
          "back\\slash a:b,c").split()
    drows = _corpus(rnd, gv, 200)
    conn.execute("SELECT memory.store_many('de', %s, ids => %s)",
                 ([r[1] for r in drows], [r[0] for r in drows]))
    conn.execute("SELECT memory.refresh_text_stats('de')")
    st = _stats(conn, "de")
    _exact(conn)
    for _ in range(40):
        q = " ".join(rnd.choice(gv) for _ in range(rnd.randint(1, 5)))
        exp = _brute(conn, "memory_data.de_memories", "german", q, 10,
                     n=st["documents"], avgdl=st["avg_length"])
        got = _search(conn, "de", q, 10)
        assert [(i, round(s, 9)) for i, s in got] == [(i, round(s, 9)) for i, s in exp], q


def test_edge_inputs_are_clear(conn):
    conn.execute("SELECT memory.create_domain('ed', 3)")
    conn.execute("SELECT memory.store('ed', '', id => 'empty')")
    conn.execute("SELECT memory.store('ed', 'the of and', id => 'stop')")
    conn.execute("SELECT memory.store('ed', $$c:\\path foo'bar http://ex.com/a:b x,y$$, id => 'u',"
                 " embedding => '[1,0,0]')")
    conn.execute("SELECT memory.refresh_text_stats('ed')")
    for q in ["", None, "the of", "-u", '"', "'", "\\", ":", ",", "OR", "-", "\"the of\""]:
        assert _search(conn, "ed", q) == [], q
    assert [i for i, _ in _search(conn, "ed", "c:\\path")] == ["u"]
    assert [i for i, _ in _search(conn, "ed", "ex.com/a:b")] == ["u"]
    assert len(_search(conn, "ed", " ".join(f"w{i}" for i in range(64)))) == 0
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="64"):
        _search(conn, "ed", " ".join(f"w{i}" for i in range(65)))
    for k in [0, 1001, None]:
        with pytest.raises(psycopg.errors.Error, match="k must be"):
            _search(conn, "ed", "path", k)
    assert len(_search(conn, "ed", "path", 1000)) == 1
    with pytest.raises(psycopg.errors.Error, match="needs a query text"):
        conn.execute("SELECT * FROM memory.search_hybrid('ed', NULL, NULL)")
    for q in [None, "", "the of"]:
        rows = conn.execute("SELECT id, text_rank FROM memory.search_hybrid('ed', %s, '[1,0,0]')",
                            (q,)).fetchall()
        assert [r["id"] for r in rows] == ["u"] and rows[0]["text_rank"] is None, q
    assert [r["id"] for r in conn.execute(
        "SELECT id FROM memory.search_hybrid('ed', 'path', NULL)")] == ["u"]


def test_refresh_concurrent_with_open_writers(conn, dsn):
    """refresh_text_stats while another transaction holds uncommitted inserts, content updates
    and deletes (explicit steps): no wait, no error; after the writer commits, exact search
    equals brute force (nothing lost, nothing stale, nothing deleted returned). Then a
    sync_text_index of an adopted table waits for an open writer and keeps its row."""
    rows = _random_domain(conn, "cc", 5, 40, 300)
    w = psycopg.connect(dsn, row_factory=dict_row)
    try:
        w.execute("SELECT memory.store('cc', 'w1 w1 w1 w2', id => 'new')")
        w.execute("SELECT memory.update('cc', 'r0001', content => 'w3 w3')")
        w.execute("SELECT memory.forget('cc', 'r0002')")
        assert one(conn, "SELECT memory.refresh_text_stats('cc')") == 1  # no wait
        w.commit()
    finally:
        w.close()
    _exact(conn)
    st = _stats(conn, "cc")
    for q in ["w1 w2", "w3", "w2 w3 w1", "w0"]:
        exp = _brute(conn, "memory_data.cc_memories", "simple", q, 10,
                     n=st["documents"], avgdl=st["avg_length"])
        got = _search(conn, "cc", q)
        assert [g[0] for g in got] == [e[0] for e in exp], q
        assert [g[1] for g in got] == pytest.approx([e[1] for e in exp]), q
    # adopted: writer open, sync waits for it, then the writer's row is indexed
    conn.execute("CREATE SCHEMA app")
    conn.execute("CREATE TABLE app.n (id bigint PRIMARY KEY, body text, emb vector(3))")
    conn.execute("INSERT INTO app.n SELECT g, 'note ' || g FROM generate_series(1, 50) g")
    conn.execute("SELECT memory.adopt_table('an', 'app.n', 'id', 'body', 'emb')")
    w, s = psycopg.connect(dsn, row_factory=dict_row), psycopg.connect(dsn, row_factory=dict_row)
    try:
        w.execute("INSERT INTO app.n VALUES (99, 'walrus arrives')")
        w.execute("UPDATE app.n SET body = NULL WHERE id = 1")
        spid = s.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]
        out = {}
        t = threading.Thread(target=lambda: out.update(
            r=s.execute("SELECT memory.sync_text_index('an') AS n").fetchone()["n"]))
        t.start()
        wait_for_lock_wait(conn, spid)
        w.commit()
        t.join(30)
        s.commit()
        assert out.get("r") == 0, out
    finally:
        w.close()
        s.close()
    assert [i for i, _ in _search(conn, "an", "walrus")] == ["99"]
    assert _search(conn, "an", "note 1") and "1" not in [i for i, _ in _search(conn, "an", "1")]




def test_run_maintenance_survives_an_adopted_table_dropped_with_cascade(conn):
    """An adopted table dropped with CASCADE (its view goes with it) is skipped by
    run_maintenance, named in skipped_domains, instead of failing every run (LOCK TABLE of the
    dropped table's number; stop 36's review)."""
    conn.execute("CREATE TABLE public.docs (id bigint PRIMARY KEY, body text NOT NULL, emb vector(3))")
    conn.execute("INSERT INTO public.docs VALUES (1, 'hello there', NULL)")
    conn.execute("SELECT memory.adopt_table('a', 'public.docs', 'id', 'body', 'emb')")
    conn.execute("DROP TABLE public.docs CASCADE")
    out = one(conn, "SELECT memory.run_maintenance()")
    assert "dropped" in out["skipped_domains"]["a"], out
    conn.execute("SELECT memory.drop_domain('a')")
    assert one(conn, "SELECT memory.run_maintenance()")["skipped_domains"] == {}
