"""MemoryStore and AsyncMemoryStore: thin clients over the memory.* SQL functions.

Every method is one call of a memory.* function (or a read of a memory.* view), with arguments
bound by name. Each call is described once, as a plan (`_Call`: function, named arguments, the
shape of the result), in `_Api`; MemoryStore runs the plans with psycopg, AsyncMemoryStore with
psycopg's async connections, so the two clients have the same methods by construction.

Connections: one per store by default, or a psycopg_pool pool with `pool_size=N`. Either is
opened and its schema version verified before `connect` returns; the context manager (or
`close()`) closes it. Pass `conn=` (from `store.transaction()`) to run calls in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb
from pgvector import Vector
from pgvector.psycopg.vector import register_vector_info

from . import config, resources

log = logging.getLogger("pgmemo")

_UNSET: Any = object()

NOT_INSTALLED = "pgmemo is not installed in this database: run `pgmemo migrate`"


class SchemaVersionError(RuntimeError):
    """The database's pgmemo schema is missing, older or newer than this client."""


class ReadOnlyDatabaseError(psycopg.errors.ReadOnlySqlTransaction):
    """A write reached a read-only server (a streaming replica): SQLSTATE 25006."""

    @classmethod
    def wrap(cls, exc: psycopg.Error) -> "ReadOnlyDatabaseError":
        server = exc.diag.message_primary if exc.diag and exc.diag.message_primary else str(exc)
        return cls("this database is read-only (a hot-standby replica, or "
                   "default_transaction_read_only is on): send writes to the primary "
                   "(DATABASE_URL) and use the replica only as DATABASE_READ_URL / read_dsn "
                   f"[25006; server: {server.strip()}]")


def as_vector(values: Any) -> Vector | None:
    """A pgvector Vector from a list/array of floats (None stays None)."""
    if values is None or isinstance(values, Vector):
        return values
    return Vector(list(values))


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _interval(value: timedelta | float | int) -> timedelta:
    """A lease as an interval: a timedelta, or a number of seconds."""
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


# -- the vector type and the schema check (sync and async) ------------------------------------
_VECTOR_TYPE_SQL = (
    "SELECT format('%I.%I', n.nspname, t.typname) AS name FROM pg_catalog.pg_type AS t"
    " JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace"
    " JOIN pg_catalog.pg_depend AS d ON d.objid = t.oid AND d.deptype = 'e'"
    " JOIN pg_catalog.pg_extension AS e ON e.oid = d.refobjid AND e.extname = 'vector'"
    " WHERE t.typname = 'vector'")
_NOT_INSTALLED_ERRORS = (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName,
                         psycopg.errors.UndefinedTable)


def _no_vector() -> SchemaVersionError:
    return SchemaVersionError("the vector extension (pgvector) is not installed in this database")


def _not_installed() -> SchemaVersionError:
    return SchemaVersionError(f"{NOT_INSTALLED} (or psql -f install.sql); this client needs "
                              f"schema version {resources.schema_version()}")


def check_schema_version(version: dict[str, Any] | None) -> dict[str, Any]:
    """memory.version()'s answer must be at least the newest migration this client ships; a
    newer schema is accepted unless a migration this client does not know breaks older clients
    (`--! breaking-change`; docs/UPGRADING.md)."""
    expected = resources.schema_version()
    version = version or {}
    found = version.get("schema_version") or "0000"
    if found < expected:
        raise SchemaVersionError(
            f"the database has pgmemo schema version {found}, this client needs {expected}: "
            "run `pgmemo migrate`")
    # A newer schema that does not say what breaks (no breaking_version key) is refused.
    breaking = version.get("breaking_version", found)
    if found > expected and breaking is not None and breaking > expected:
        raise SchemaVersionError(
            f"the database has pgmemo schema version {found}, newer than this client "
            f"({expected}), and migration {version.get('breaking_migration') or breaking} "
            "breaks older clients: upgrade pgmemo to a release with schema version "
            f"{breaking} or newer (pip install -U pgmemo)")
    return version


def connect_raw(dsn: str, **kwargs: Any) -> psycopg.Connection:
    """A psycopg connection (autocommit, rows as dicts) with the vector type registered."""
    conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row, **kwargs)
    try:
        register_vector(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def register_vector(conn: psycopg.Connection) -> None:
    """Register pgvector's vector type wherever the extension lives (public, extensions, ...)."""
    row = conn.execute(_VECTOR_TYPE_SQL).fetchone()
    if row is None:
        raise _no_vector()
    register_vector_info(conn, TypeInfo.fetch(conn, row["name"]))


async def aregister_vector(conn: psycopg.AsyncConnection) -> None:
    """register_vector for an async connection."""
    row = await (await conn.execute(_VECTOR_TYPE_SQL)).fetchone()
    if row is None:
        raise _no_vector()
    register_vector_info(conn, await TypeInfo.fetch(conn, row["name"]))


# -- call plans ----------------------------------------------------------------------------------
@dataclass
class Arg:
    """A named argument that needs a cast (`::interval`) or binary transfer (vector arrays)."""

    value: Any
    cast: str | None = None
    binary: bool = False


@dataclass
class _Call:
    """One call of a memory.* function: `SELECT * FROM memory.<fn>(name => value, ...)`."""

    fn: str
    args: dict[str, Any] = field(default_factory=dict)
    shape: str = "rows"            # rows | row | value | column | none
    read: bool = False             # may run on the read replica
    sql: str | None = None         # a view read instead of a function call
    post: Callable[[Any], Any] | None = None

    def query(self) -> tuple[Any, dict[str, Any]]:
        if self.sql is not None:
            return self.sql, self.args or None
        named = []
        params: dict[str, Any] = {}
        for name, value in self.args.items():
            placeholder = "%({})s".format(name)
            if isinstance(value, Arg):
                if value.binary:
                    placeholder = "%({})b".format(name)
                if value.cast:
                    placeholder += "::" + value.cast
                value = value.value
            named.append(f"{name} => {placeholder}")
            params[name] = value
        return f"SELECT * FROM memory.{self.fn}({', '.join(named)})", params

    def result(self, rows: list[dict[str, Any]]) -> Any:
        if self.shape == "rows":
            out: Any = rows
        elif self.shape == "row":
            out = rows[0] if rows else None
        elif self.shape == "value":
            out = next(iter(rows[0].values())) if rows else None
        elif self.shape == "column":
            out = [next(iter(r.values())) for r in rows]
        else:
            out = None
        return self.post(out) if self.post is not None else out


def _without_embedding(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        r.pop("embedding", None)
    return rows


class _Api:
    """The plans. Each public method of the stores is `plan(self, ...)` run by the store."""

    default_domain: str

    def _domain(self, domain: str | None) -> str:
        return domain or self.default_domain

    # -- domains ------------------------------------------------------------------------------
    def version(self) -> _Call:
        return _Call("version", shape="value")

    def create_domain(self, domain: str | None = None, dimension: int | None = None,
                      distance: str = "cosine", embedding_model: str | None = None,
                      hnsw_m: int = 16, hnsw_ef_construction: int = 64,
                      text_config: str = "english", embedding_type: str = "vector") -> _Call:
        """dimension: default the configured embedder's (768 without one). embedding_type:
        'vector' (32-bit floats) or 'halfvec' (16-bit: half the index size)."""
        if dimension is None:
            dimension = self._embedder_dimension() or 768
        return _Call("create_domain", {
            "domain": self._domain(domain), "dimension": dimension, "distance": distance,
            "embedding_model": embedding_model, "hnsw_m": hnsw_m,
            "hnsw_ef_construction": hnsw_ef_construction,
            "text_config": Arg(text_config, "regconfig"), "embedding_type": embedding_type},
            shape="value", post=str)

    def drop_domain(self, domain: str) -> _Call:
        return _Call("drop_domain", {"domain": domain}, shape="none")

    def distribute_domain(self, domain: str | None = None, shard_count: int = 32) -> _Call:
        """Distribute a domain over a Citus cluster (run on the coordinator; docs/SCALING.md)."""
        return _Call("distribute_domain", {"domain": self._domain(domain),
                                           "shard_count": shard_count}, shape="value", post=str)

    def domains(self) -> _Call:
        return _Call("domains", sql="SELECT * FROM memory.domains ORDER BY domain", read=True)

    # -- writing ------------------------------------------------------------------------------
    def store(self, content: str, domain: str | None = None, metadata: dict | None = None,
              embedding: Iterable[float] | None = None, id: str | None = None) -> _Call:
        return _Call("store", {"domain": self._domain(domain), "content": content,
                               "metadata": Jsonb(metadata or {}),
                               "embedding": as_vector(embedding), "id": id}, shape="value")

    def store_many(self, contents: Sequence[str], domain: str | None = None,
                   metadatas: Sequence[dict | None] | None = None,
                   embeddings: Sequence[Iterable[float] | None] | None = None,
                   ids: Sequence[str | None] | None = None) -> _Call:
        return _Call("store_many", {
            "domain": self._domain(domain), "contents": list(contents),
            "metadatas": Arg(None if metadatas is None else [_json(m) for m in metadatas],
                             "jsonb[]"),
            # binary: as text, formatting 1000 x 384 floats costs ~0.8 s
            "embeddings": Arg(None if embeddings is None else [as_vector(e) for e in embeddings],
                              binary=True),
            "ids": None if ids is None else list(ids)}, shape="column")

    def update(self, id: str, domain: str | None = None, content: str | None = None,
               metadata: dict | None = None, embedding: Iterable[float] | None = None) -> _Call:
        return _Call("update", {"domain": self._domain(domain), "id": id, "content": content,
                                "metadata": _json(metadata), "embedding": as_vector(embedding)},
                     shape="value")

    def forget(self, id: str, domain: str | None = None) -> _Call:
        return _Call("forget", {"domain": self._domain(domain), "id": id}, shape="value")

    def forget_many(self, ids: Sequence[str], domain: str | None = None) -> _Call:
        """Delete these ids in one statement; returns how many existed."""
        return _Call("forget_many", {"domain": self._domain(domain), "ids": list(ids)},
                     shape="value")

    def clear(self, domain: str | None = None) -> _Call:
        """Delete every memory of the domain (the domain and its indexes stay); returns the count."""
        return _Call("clear", {"domain": self._domain(domain)}, shape="value")

    def get(self, id: str, domain: str | None = None) -> _Call:
        return _Call("get", {"domain": self._domain(domain), "id": id}, shape="row")

    def get_many(self, ids: Sequence[str], domain: str | None = None,
                 with_embeddings: bool = True) -> _Call:
        """Rows with these ids, in the order asked (absent ids are skipped)."""
        return _Call("get_many", {"domain": self._domain(domain), "ids": list(ids),
                                  "with_embeddings": with_embeddings})

    def import_rows(self, domain: str, ids: Sequence[str], contents: Sequence[str],
                    metadatas: Sequence[Any] | None = None,
                    embeddings: Sequence[Any] | None = None,
                    created_ats: Sequence[Any] | None = None,
                    updated_ats: Sequence[Any] | None = None) -> _Call:
        return _Call("import_rows", {
            "domain": domain, "ids": list(ids), "contents": list(contents),
            "metadatas": Arg(None if metadatas is None else [_json(m) for m in metadatas],
                             "jsonb[]"),
            "embeddings": Arg(None if embeddings is None else [as_vector(e) for e in embeddings],
                              binary=True),
            "created_ats": None if created_ats is None else list(created_ats),
            "updated_ats": None if updated_ats is None else list(updated_ats)}, shape="row")

    # -- searching ----------------------------------------------------------------------------
    def search(self, query_embedding: Iterable[float], domain: str | None = None, k: int = 5,
               filter: dict | None = None, min_similarity: float | None = None,
               ef_search: int | None = None, recency_half_life: timedelta | str | None = None,
               importance_weight: float | None = None, with_embeddings: bool = False) -> _Call:
        return _Call("search", {
            "domain": self._domain(domain), "query_embedding": as_vector(query_embedding),
            "k": k, "filter": _json(filter), "min_similarity": min_similarity,
            "ef_search": ef_search, "recency_half_life": Arg(recency_half_life, "interval"),
            "importance_weight": importance_weight, "with_embeddings": with_embeddings},
            read=True, post=None if with_embeddings else _without_embedding)

    def search_text(self, query: str, domain: str | None = None, k: int = 5,
                    filter: dict | None = None, match: str | None = None) -> _Call:
        # match None: the SQL default ('any', BM25-ranked; 'all' keeps rows with every word).
        return _Call("search_text", {"domain": self._domain(domain), "query": query, "k": k,
                                     "filter": _json(filter),
                                     **({"match": match} if match is not None else {})},
                     read=True)

    def search_hybrid(self, query: str, query_embedding: Iterable[float] | None,
                      domain: str | None = None, k: int = 5,
                      filter: dict | None = None, *, vector_weight: float | None = None,
                      text_weight: float | None = None, rrf_k: int | None = None,
                      ef_search: int | None = None,
                      recency_half_life: timedelta | str | None = None,
                      importance_weight: float | None = None,
                      text_match: str | None = None, with_embeddings: bool = False,
                      fusion: str | None = None) -> _Call:
        # Only the knobs given are sent, so the SQL defaults (chosen by bench/quality.py) apply.
        knobs = {"vector_weight": vector_weight, "text_weight": text_weight, "rrf_k": rrf_k,
                 "ef_search": ef_search,
                 "recency_half_life": None if recency_half_life is None
                 else Arg(recency_half_life, "interval"),
                 "importance_weight": importance_weight, "text_match": text_match,
                 "fusion": fusion}
        return _Call("search_hybrid", {
            "domain": self._domain(domain), "query": query,
            "query_embedding": as_vector(query_embedding), "k": k, "filter": _json(filter),
            **{name: value for name, value in knobs.items() if value is not None},
            "with_embeddings": with_embeddings},
            read=True, post=None if with_embeddings else _without_embedding)

    def count(self, domain: str | None = None, filter: dict | None = None) -> _Call:
        """The number of memories matching filter (the filter language of search)."""
        return _Call("count", {"domain": self._domain(domain), "filter": _json(filter)}, read=True,
                     shape="value")

    def create_metadata_index(self, key: str, type: str = "text",
                              domain: str | None = None) -> _Call:
        """A btree index on one metadata key (type number, text or boolean) that filters with
        $gt/$lt/$between/$like on that key use."""
        return _Call("create_metadata_index", {"domain": self._domain(domain), "key": key,
                                               "type": type}, shape="value")

    def create_hnsw_index(self, domain: str | None = None, m: int = 16,
                          ef_construction: int = 64) -> _Call:
        return _Call("create_hnsw_index", {"domain": self._domain(domain), "m": m,
                                           "ef_construction": ef_construction}, shape="value")

    def bulk_load_begin(self, domain: str | None = None) -> _Call:
        """Defer the domain's indexes and enqueue trigger for a bulk load (sql/70_bulk.sql)."""
        return _Call("bulk_load_begin", {"domain": self._domain(domain)}, shape="value")

    def bulk_load_finish(self, domain: str | None = None, maintenance_work_mem: str | None = None,
                         parallel_workers: int | None = None) -> _Call:
        """Build the deferred indexes once and queue rows loaded without embeddings."""
        return _Call("bulk_load_finish", {"domain": self._domain(domain),
                                          "maintenance_work_mem": maintenance_work_mem,
                                          "parallel_workers": parallel_workers}, shape="value")

    # -- adopting tables and re-embedding (pgmemo adopt / reembed) ------------------------------
    def adopt_table(self, domain: str, source: str, id_column: str = "id",
                    content_column: str = "content", embedding_column: str = "embedding",
                    distance: str = "cosine", embedding_model: str | None = None,
                    create_indexes: bool = True) -> _Call:
        """Make the table `source` (schema.table) a domain without copying it."""
        return _Call("adopt_table", {
            "domain": domain, "source": Arg(source, "regclass"), "id_column": id_column,
            "content_column": content_column, "embedding_column": embedding_column,
            "distance": distance, "embedding_model": embedding_model,
            "create_indexes": create_indexes}, shape="value")

    def fill_text_index(self, domain: str, max_rows: int = 10000) -> _Call:
        """Index the next max_rows rows of an adopted domain's table whose text index is being
        filled (adopted with create_indexes=False); returns how many rows it went through (fewer
        than max_rows: done)."""
        return _Call("fill_text_index", {"domain": domain, "max_rows": max_rows}, shape="value")

    def concurrent_index_statements(self, domain: str, m: int | None = None,
                                    ef_construction: int | None = None) -> _Call:
        """The statements that build the domain's indexes without blocking writes; run each
        with run_statement (autocommit)."""
        return _Call("concurrent_index_statements",
                     {"domain": domain, "m": m, "ef_construction": ef_construction},
                     shape="column")

    def begin_reembed(self, domain: str, embedding_model: str, dimension: int,
                      create_index: bool = True) -> _Call:
        return _Call("begin_reembed", {"domain": domain, "embedding_model": embedding_model,
                                       "dimension": dimension, "create_index": create_index},
                     shape="value")

    def reembed_status(self, domain: str | None = None) -> _Call:
        return _Call("reembed_status", {"domain": domain})

    def finish_reembed(self, domain: str) -> _Call:
        return _Call("finish_reembed", {"domain": domain}, shape="value")

    def cancel_reembed(self, domain: str) -> _Call:
        return _Call("cancel_reembed", {"domain": domain}, shape="none")

    # -- queue and diagnostics ----------------------------------------------------------------
    def enqueue_missing(self, domain: str | None = None) -> _Call:
        return _Call("enqueue_missing", {"domain": domain}, shape="value")

    def queue_counts(self, domain: str | None = None) -> _Call:
        """Jobs by state (ready, waiting, claimed, dead), of one domain or all."""
        return _Call("queue_counts", {"domain": domain}, shape="row")

    def requeue_dead(self, domain: str | None = None) -> _Call:
        return _Call("requeue_dead", {"domain": domain}, shape="value")

    def run_maintenance(self) -> _Call:
        return _Call("run_maintenance", shape="value")

    # -- the embedding queue protocol (what `pgmemo worker` calls; usable by any worker) ----------
    def claim_embedding_jobs(self, batch_size: int = 32, worker: str | None = None,
                             lease: timedelta | float = 300.0,
                             only_domain: str | None = None) -> _Call:
        """Claim up to batch_size ready jobs (FOR UPDATE SKIP LOCKED) for lease (seconds or a
        timedelta); rows: job_id, domain, row_id, content, dimension, embedding_model."""
        return _Call("claim_embedding_jobs", {
            "batch_size": batch_size, "worker": worker, "lease": _interval(lease),
            "only_domain": only_domain})

    def complete_embedding_jobs(self, job_ids: Sequence[int],
                                embeddings: Sequence[Iterable[float]],
                                embedding_model: str | None = None) -> _Call:
        """Write the embeddings of claimed jobs; returns how many were written (a row whose
        content changed since the claim is re-queued instead)."""
        return _Call("complete_embedding_jobs", {
            "job_ids": list(job_ids),
            "embeddings": Arg([as_vector(e) for e in embeddings], binary=True),
            "embedding_model": embedding_model}, shape="value")

    def fail_embedding_jobs(self, job_ids: Sequence[int], error: str) -> _Call:
        """Record a failure of these jobs (retried with backoff, dead after the limit)."""
        return _Call("fail_embedding_jobs", {"job_ids": list(job_ids), "error": error},
                     shape="value")

    def extend_claims(self, job_ids: Sequence[int], lease: timedelta | float = 300.0) -> _Call:
        """Extend the leases of jobs still in hand; returns how many were extended."""
        return _Call("extend_claims", {"job_ids": list(job_ids), "lease": _interval(lease)},
                     shape="value")

    def release_claims(self, job_ids: Sequence[int]) -> _Call:
        """Give claimed jobs back without counting an attempt; returns how many."""
        return _Call("release_claims", {"job_ids": list(job_ids)}, shape="value")

    def worker_heartbeat(self, worker: str, jobs_done: int = 0, jobs_failed: int = 0,
                         info: dict | None = None) -> _Call:
        return _Call("worker_heartbeat", {"worker": worker, "jobs_done": jobs_done,
                                          "jobs_failed": jobs_failed,
                                          "info": Jsonb(info or {})}, shape="none")

    def worker_stopped(self, worker: str) -> _Call:
        return _Call("worker_stopped", {"worker": worker}, shape="none")

    def schedule_maintenance(self, schedule: str | None = None) -> _Call:
        return _Call("schedule_maintenance",
                     {} if schedule is None else {"schedule": schedule}, shape="value")

    def coverage(self, domain: str | None = None) -> _Call:
        return _Call("embedding_coverage", {"domain": domain}, read=True, sql=(
            "SELECT * FROM memory.embedding_coverage"
            " WHERE %(domain)s::text IS NULL OR domain = %(domain)s ORDER BY domain"))

    def diagnose(self, domain: str | None = None) -> _Call:
        return _Call("diagnose", {"domain": domain}, read=True)

    def vector_indexes(self, domain: str | None = None) -> _Call:
        return _Call("vector_indexes", {"domain": domain}, read=True, sql=(
            "SELECT * FROM memory.vector_indexes WHERE %(domain)s::text IS NULL"
            " OR domain = %(domain)s ORDER BY domain, index_name"))

    def queue_status(self, domain: str | None = None) -> _Call:
        return _Call("queue_status", {"domain": domain}, read=True, sql=(
            "SELECT * FROM memory.queue_status WHERE %(domain)s::text IS NULL"
            " OR domain = %(domain)s ORDER BY domain"))

    def workers(self) -> _Call:
        return _Call("workers", read=True, sql="SELECT * FROM memory.workers ORDER BY worker")

    def explain_search(self, domain: str | None = None, k: int = 10,
                       filter: dict | None = None) -> _Call:
        return _Call("explain_search", {"domain": self._domain(domain), "k": k,
                                        "filter": _json(filter)}, read=True, shape="row")

    def api_reference(self) -> _Call:
        return _Call("api_reference", shape="value")

    def run_statement(self, statement: str) -> _Call:
        """Run one statement that a memory.* function produced (memory.diagnose()'s fix_sql,
        memory.concurrent_index_statements), in autocommit so REINDEX / CREATE INDEX
        CONCURRENTLY work."""
        return _Call("run_statement", sql=statement, shape="none")

    def apply_fix(self, fix_sql: str) -> _Call:
        """Run one fix_sql statement that memory.diagnose() produced (see run_statement)."""
        return _Api.run_statement(self, fix_sql)

    def _embedder_dimension(self) -> int | None:
        """The embedder's dimension when known (the stores ask the embedder first)."""
        embedder = getattr(self, "embedder", None)
        return None if embedder is None else getattr(embedder, "dimension", None)


_PLANS = [name for name, value in vars(_Api).items()
          if callable(value) and not name.startswith("_")]


# -- shared by store_memory / search_memories of both clients -----------------------------------
def _memory_metadata(metadata: dict | None, source: str | None, importance: float | None) -> dict:
    meta = dict(metadata or {})
    if source is not None:
        meta["source"] = source
    if importance is not None:
        if not isinstance(importance, (int, float)) or math.isnan(importance):
            raise ValueError(f"importance must be a number, got {importance!r}")
        meta["importance"] = importance
    return meta


def found_by(rows: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """Each result says how it was found: mode is 'hybrid', 'vector' or 'text', and in hybrid
    mode found_by is 'vector', 'text' or 'vector+text'."""
    out = []
    for r in rows:
        r = {**r, "mode": mode}
        if mode == "hybrid":
            parts = [p for p, v in (("vector", r.get("similarity")), ("text", r.get("text_rank")))
                     if v is not None]
            r["found_by"] = "+".join(parts)
        else:
            r["found_by"] = mode
        out.append(r)
    return out


def _embed_warning(embedder: Any, what: str, exc: Exception) -> None:
    log.warning("%s: embedding with %s failed (%s); %s", what, getattr(embedder, "name", "embedder"),
                exc, "row stored without embedding, the queue will embed it"
                if what == "store_memory" else "falling back to full-text search")


def _check_pool_size(pool_size: int | None) -> None:
    if pool_size is not None and (not isinstance(pool_size, int) or pool_size < 1):
        raise ValueError(f"pool_size must be a positive integer, got {pool_size!r}")


# -- the synchronous client ---------------------------------------------------------------------
def _sync_method(name: str) -> Callable[..., Any]:
    plan = getattr(_Api, name)

    @functools.wraps(plan)
    def method(self: "MemoryStore", *args: Any, conn: psycopg.Connection | None = None,
               **kwargs: Any) -> Any:
        return self._run(plan(self, *args, **kwargs), conn)

    return method


def _async_method(name: str) -> Callable[..., Any]:
    plan = getattr(_Api, name)

    @functools.wraps(plan)
    async def method(self: "AsyncMemoryStore", *args: Any,
                     conn: psycopg.AsyncConnection | None = None, **kwargs: Any) -> Any:
        return await self._run(plan(self, *args, **kwargs), conn)

    return method


class MemoryStore(_Api):
    """Memories in PostgreSQL. Create with MemoryStore.connect(); every method is one SQL call."""

    def __init__(self, conn: psycopg.Connection | None = None, *,
                 default_domain: str | None = None, embedder: Any = None, dsn: str | None = None,
                 read_conn: psycopg.Connection | None = None, pool: Any = None,
                 read_pool: Any = None) -> None:
        self.conn = conn            # the one connection, or None with a pool
        self.pool = pool            # psycopg_pool.ConnectionPool with pool_size=
        self.read_conn = read_conn  # searches and diagnostics (a replica), else None: conn
        self.read_pool = read_pool
        self.dsn = dsn
        self.default_domain = default_domain or config.default_domain()
        self.embedder = embedder

    # -- connecting -------------------------------------------------------------------------
    @classmethod
    def connect(cls, dsn: str | None = None, *, default_domain: str | None = None,
                embedder: Any = _UNSET, migrate: bool = False,
                read_dsn: str | None = None, pool_size: int | None = None,
                pool_timeout: float = 30.0) -> "MemoryStore":
        """Connect synchronously and verify the schema version before returning.

        dsn: argument, DATABASE_URL, POSTGRES_* or (none of these) the embedded default.
        read_dsn: argument or DATABASE_READ_URL: a read replica for searches, domains, coverage
        and diagnose (writes, get and the queue stay on dsn). Unset: everything uses dsn.
        embedder: an Embedder, None for none, or (default) the one PGMEMO_EMBEDDER names.
        migrate: run `pgmemo migrate` first (used by the embedded default and the demo).
        pool_size: a pool of that many connections (psycopg_pool), for threads sharing the
        store; every connection is open and checked before connect returns.
        """
        _check_pool_size(pool_size)
        resolved, owned = _resolve(dsn)
        conn = pool = read_conn = read_pool = None
        try:
            conn, pool = _open_sync(resolved, pool_size, pool_timeout, migrate=migrate,
                                    owned=owned)
            replica = config.read_dsn(read_dsn)
            if replica:
                read_conn, read_pool = _open_sync(replica, pool_size, pool_timeout)
        except BaseException:
            for c in (conn, pool, read_conn, read_pool):
                if c is not None:
                    c.close()
            raise
        if embedder is _UNSET:
            from .embedders import get_embedder

            embedder = get_embedder()
        return cls(conn, default_domain=default_domain, embedder=embedder, dsn=resolved,
                   read_conn=read_conn, pool=pool, read_pool=read_pool)

    @staticmethod
    def verify_schema(conn: psycopg.Connection) -> dict[str, Any]:
        """memory.version() must exist and match the newest migration this client ships
        (conn returns rows as dicts)."""
        try:
            with conn.transaction():
                row = conn.execute("SELECT memory.version() AS v").fetchone()
        except _NOT_INSTALLED_ERRORS:
            raise _not_installed() from None
        return check_schema_version(row["v"])

    def close(self) -> None:
        if self.embedder is not None and hasattr(self.embedder, "close"):
            self.embedder.close()
        for c in (self.read_conn, self.read_pool, self.conn, self.pool):
            if c is not None:
                c.close()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def connection(self, *, read: bool = False) -> Iterator[psycopg.Connection]:
        """A connection of the store (from the pool, or the one connection)."""
        pool = self.read_pool if read and self.read_pool is not None else self.pool
        if pool is not None:
            with pool.connection() as c:
                yield c
        else:
            yield self.read_conn if read and self.read_conn is not None else self.conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction for several calls: `with store.transaction() as tx:
        store.store(..., conn=tx); store.forget(..., conn=tx)`; committed at the end."""
        with self.connection() as c, c.transaction():
            yield c

    def _run(self, call: _Call, conn: psycopg.Connection | None = None) -> Any:
        sql, params = call.query()
        try:
            if conn is not None:
                return call.result(_fetch(conn.execute(sql, params)))
            with self.connection(read=call.read) as c:
                return call.result(_fetch(c.execute(sql, params)))
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise ReadOnlyDatabaseError.wrap(exc) from exc

    def create_domain(self, domain: str | None = None, dimension: int | None = None,
                      *args: Any, conn: psycopg.Connection | None = None, **kwargs: Any) -> str:
        """memory.create_domain. dimension defaults to the configured embedder's (asked once
        when not known yet), else 768."""
        if dimension is None and self.embedder is not None and self._embedder_dimension() is None:
            self.embedder.embed(["dimension probe"])
        return self._run(_Api.create_domain(self, domain, dimension, *args, **kwargs), conn)

    # -- the API users of the old SQLite/FAISS store call -----------------------------------
    def store_memory(self, content: str, domain: str | None = None, source: str | None = None,
                     importance: float | None = None, metadata: dict | None = None,
                     id: str | None = None) -> str:
        """Store a memory, embedding it now when an embedder is configured (upsert when id
        is given).

        If the embedder fails, the row is stored anyway and left to the queue (a warning is
        logged): a write is never lost.
        """
        _require_text(content, "content")
        meta = _memory_metadata(metadata, source, importance)
        embedding = self._embed_or_none(content, "store_memory") if self.embedder else None
        return self.store(content, domain=domain, metadata=meta, embedding=embedding, id=id)

    def search_memories(self, query: str, domain: str | None = None, limit: int = 5,
                        filter: dict | None = None, mode: str | None = None) -> list[dict[str, Any]]:
        """Search memories for query. mode: 'hybrid' (the default with an embedder: rows still
        waiting for their embedding are found by their words), 'vector', or 'text' (the default
        without one, and the fallback when embedding the query fails). Each result says how it
        was found: `mode`, and `found_by` ('vector', 'text' or 'vector+text')."""
        _require_text(query, "query")
        mode = _search_mode(mode, self.embedder)
        embedding = None
        if mode != "text":
            embedding = self._embed_or_none(query, "search_memories")
            if embedding is None:
                mode = "text"
        if mode == "hybrid":
            rows = self.search_hybrid(query, embedding, domain=domain, k=limit, filter=filter)
        elif mode == "vector":
            rows = self.search(embedding, domain=domain, k=limit, filter=filter)
        else:
            rows = self.search_text(query, domain=domain, k=limit, filter=filter)
        return found_by(rows, mode)

    def _embed_or_none(self, text: str, what: str) -> list[float] | None:
        from .embedders import EmbeddingError

        try:
            return self.embedder.embed([text])[0]
        except EmbeddingError as exc:
            _embed_warning(self.embedder, what, exc)
            return None


def _require_text(value: str, what: str) -> None:
    """The memory-level calls refuse an empty or blank text by name: a blank query finds nothing
    by its words and its embedding means nothing (arbitrary rows came back), a blank memory
    holds nothing to find. (memory.store itself stores any non-NULL content.)"""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} is empty: give its words")


def _search_mode(mode: str | None, embedder: Any) -> str:
    if mode is None:
        return "hybrid" if embedder is not None else "text"
    if mode not in ("hybrid", "vector", "text"):
        raise ValueError(f"mode must be 'hybrid', 'vector' or 'text', got {mode!r}")
    if mode != "text" and embedder is None:
        raise ValueError(f"mode {mode!r} needs an embedder (PGMEMO_EMBEDDER); use mode='text'")
    return mode


def _fetch(cur: psycopg.Cursor) -> list[dict[str, Any]]:
    return cur.fetchall() if cur.description is not None else []


def _resolve(dsn: str | None) -> tuple[str, bool]:
    """The DSN, and whether it is the embedded server that pgmemo started and owns: that one is
    migrated automatically on first use (never a database the user configured)."""
    if config.configured_dsn(dsn):
        return config.resolve_dsn(dsn), False
    from . import embedded

    return embedded.ensure_running().dsn, True


def _verified_connection(dsn: str, migrate: bool, owned: bool) -> psycopg.Connection:
    """A connection whose schema version is verified; migrated first when asked, or when it is
    the embedded server pgmemo owns and its schema is missing or older."""
    from .migrate import migrate as run_migrate

    conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
    try:
        if migrate:
            run_migrate(dsn)
        try:
            MemoryStore.verify_schema(conn)
        except SchemaVersionError:
            if not owned:
                raise
            log.info("migrating the embedded database (first use or upgrade)")
            run_migrate(dsn)
            MemoryStore.verify_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_verified(dsn: str | None = None) -> tuple[psycopg.Connection, str]:
    """One connection (autocommit, rows as dicts, vector type registered) whose schema version
    is verified, and the DSN it resolved to (argument, DATABASE_URL, POSTGRES_*, else the
    embedded default, which pgmemo migrates on first use). For long-lived callers that manage
    their own connections, such as the worker."""
    resolved, owned = _resolve(dsn)
    conn, _ = _open_sync(resolved, None, 0.0, owned=owned)
    return conn, resolved


def _open_sync(dsn: str, pool_size: int | None, timeout: float, *, migrate: bool = False,
               owned: bool = False) -> tuple[Any, Any]:
    """(connection, None) or (None, pool): open, schema verified, vector type registered."""
    # Verified on one plain connection first: a pool would retry a missing schema forever.
    conn = _verified_connection(dsn, migrate, owned)
    if pool_size is None:
        try:
            register_vector(conn)
        except BaseException:
            conn.close()
            raise
        return conn, None
    conn.close()
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(dsn, min_size=pool_size, max_size=pool_size, open=False,
                          kwargs={"autocommit": True, "row_factory": dict_row},
                          configure=register_vector, timeout=timeout, name="pgmemo")
    try:
        pool.open(wait=True, timeout=timeout)   # every connection made before we return
        pool.check()
    except BaseException:
        pool.close()
        raise
    return None, pool


for _name in _PLANS:
    if _name not in MemoryStore.__dict__:  # composite methods are written out in the class
        setattr(MemoryStore, _name, _sync_method(_name))


# -- the asyncio client -------------------------------------------------------------------------
class AsyncMemoryStore(_Api):
    """MemoryStore for asyncio: the same methods, awaited. Create with
    `await AsyncMemoryStore.connect(...)` (or `async with await AsyncMemoryStore.connect()`)."""

    def __init__(self, conn: psycopg.AsyncConnection | None = None, *,
                 default_domain: str | None = None, embedder: Any = None,
                 dsn: str | None = None, read_conn: psycopg.AsyncConnection | None = None,
                 pool: Any = None, read_pool: Any = None) -> None:
        self.conn = conn
        self.pool = pool
        self.read_conn = read_conn
        self.read_pool = read_pool
        self.dsn = dsn
        self.default_domain = default_domain or config.default_domain()
        self.embedder = embedder

    @classmethod
    async def connect(cls, dsn: str | None = None, *, default_domain: str | None = None,
                      embedder: Any = _UNSET, migrate: bool = False,
                      read_dsn: str | None = None, pool_size: int | None = None,
                      pool_timeout: float = 30.0) -> "AsyncMemoryStore":
        """As MemoryStore.connect. Returns only once the connection (or every connection of the
        pool) is open and the schema verified: nothing is left starting in the background."""
        _check_pool_size(pool_size)
        resolved, owned = await asyncio.to_thread(_resolve, dsn)
        if migrate or owned:  # the migration runner is synchronous: in a thread
            (await asyncio.to_thread(_verified_connection, resolved, migrate, owned)).close()
        conn = pool = read_conn = read_pool = None
        try:
            conn, pool = await _open_async(resolved, pool_size, pool_timeout)
            replica = config.read_dsn(read_dsn)
            if replica:
                read_conn, read_pool = await _open_async(replica, pool_size, pool_timeout)
        except BaseException:
            for c in (conn, pool, read_conn, read_pool):
                if c is not None:
                    await c.close()
            raise
        if embedder is _UNSET:
            from .embedders import get_embedder

            embedder = get_embedder()
        return cls(conn, default_domain=default_domain, embedder=embedder, dsn=resolved,
                   read_conn=read_conn, pool=pool, read_pool=read_pool)

    @staticmethod
    async def verify_schema(conn: psycopg.AsyncConnection) -> dict[str, Any]:
        try:
            async with conn.transaction():
                row = await (await conn.execute("SELECT memory.version() AS v")).fetchone()
        except _NOT_INSTALLED_ERRORS:
            raise _not_installed() from None
        return check_schema_version(row["v"])

    async def close(self) -> None:
        if self.embedder is not None:
            if hasattr(self.embedder, "aclose"):
                await self.embedder.aclose()
            if hasattr(self.embedder, "close"):
                self.embedder.close()
        for c in (self.read_conn, self.read_pool, self.conn, self.pool):
            if c is not None:
                await c.close()

    async def __aenter__(self) -> "AsyncMemoryStore":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def connection(self, *, read: bool = False) -> AsyncIterator[psycopg.AsyncConnection]:
        pool = self.read_pool if read and self.read_pool is not None else self.pool
        if pool is not None:
            async with pool.connection() as c:
                yield c
        else:
            yield self.read_conn if read and self.read_conn is not None else self.conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """One transaction for several calls (pass `conn=` the connection it yields)."""
        async with self.connection() as c, c.transaction():
            yield c

    async def _run(self, call: _Call, conn: psycopg.AsyncConnection | None = None) -> Any:
        sql, params = call.query()
        try:
            if conn is not None:
                return call.result(await _afetch(await conn.execute(sql, params)))
            async with self.connection(read=call.read) as c:
                return call.result(await _afetch(await c.execute(sql, params)))
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise ReadOnlyDatabaseError.wrap(exc) from exc

    async def create_domain(self, domain: str | None = None, dimension: int | None = None,
                            *args: Any, conn: psycopg.AsyncConnection | None = None,
                            **kwargs: Any) -> str:
        """MemoryStore.create_domain, awaited."""
        if dimension is None and self.embedder is not None and self._embedder_dimension() is None:
            await aembed(self.embedder, ["dimension probe"])
        return await self._run(_Api.create_domain(self, domain, dimension, *args, **kwargs), conn)

    async def store_memory(self, content: str, domain: str | None = None,
                           source: str | None = None, importance: float | None = None,
                           metadata: dict | None = None, id: str | None = None) -> str:
        """MemoryStore.store_memory, awaited (the embedder is called asynchronously)."""
        _require_text(content, "content")
        meta = _memory_metadata(metadata, source, importance)
        embedding = await self._embed_or_none(content, "store_memory") if self.embedder else None
        return await self.store(content, domain=domain, metadata=meta, embedding=embedding, id=id)

    async def search_memories(self, query: str, domain: str | None = None, limit: int = 5,
                              filter: dict | None = None,
                              mode: str | None = None) -> list[dict[str, Any]]:
        """MemoryStore.search_memories, awaited."""
        _require_text(query, "query")
        mode = _search_mode(mode, self.embedder)
        embedding = None
        if mode != "text":
            embedding = await self._embed_or_none(query, "search_memories")
            if embedding is None:
                mode = "text"
        if mode == "hybrid":
            rows = await self.search_hybrid(query, embedding, domain=domain, k=limit,
                                            filter=filter)
        elif mode == "vector":
            rows = await self.search(embedding, domain=domain, k=limit, filter=filter)
        else:
            rows = await self.search_text(query, domain=domain, k=limit, filter=filter)
        return found_by(rows, mode)

    async def _embed_or_none(self, text: str, what: str) -> list[float] | None:
        from .embedders import EmbeddingError

        try:
            return (await aembed(self.embedder, [text]))[0]
        except EmbeddingError as exc:
            _embed_warning(self.embedder, what, exc)
            return None


async def aembed(embedder: Any, texts: Sequence[str]) -> list[list[float]]:
    """The embedder's async embed (httpx.AsyncClient for HTTP providers), else its embed in a
    thread (the local model: CPU work that must not block the event loop)."""
    if hasattr(embedder, "aembed"):
        return await embedder.aembed(texts)
    return await asyncio.to_thread(embedder.embed, texts)


async def _afetch(cur: psycopg.AsyncCursor) -> list[dict[str, Any]]:
    return await cur.fetchall() if cur.description is not None else []


async def _open_async(dsn: str, pool_size: int | None, timeout: float) -> tuple[Any, Any]:
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row)
    try:
        await AsyncMemoryStore.verify_schema(conn)
        if pool_size is None:
            await aregister_vector(conn)
            return conn, None
    except BaseException:
        await conn.close()
        raise
    await conn.close()
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(dsn, min_size=pool_size, max_size=pool_size, open=False,
                               kwargs={"autocommit": True, "row_factory": dict_row},
                               configure=aregister_vector, timeout=timeout, name="pgmemo-async")
    try:
        await pool.open(wait=True, timeout=timeout)
        await pool.check()
    except BaseException:
        await pool.close()
        raise
    return None, pool


for _name in _PLANS:
    if _name not in AsyncMemoryStore.__dict__:
        setattr(AsyncMemoryStore, _name, _async_method(_name))

del _name

__all__ = ["AsyncMemoryStore", "found_by", "MemoryStore", "ReadOnlyDatabaseError", "SchemaVersionError",
           "aembed", "as_vector", "check_schema_version", "connect_raw", "connect_verified",
           "register_vector"]
