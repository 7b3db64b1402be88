"""MemoryStore: a thin client over the memory.* SQL functions (one call per method)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb
from pgvector import Vector
from pgvector.psycopg.vector import register_vector_info

from . import config, resources

log = logging.getLogger("pgmemo")

_UNSET: Any = object()


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
    row = conn.execute(
        "SELECT format('%I.%I', n.nspname, t.typname) AS name FROM pg_catalog.pg_type AS t"
        " JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace"
        " JOIN pg_catalog.pg_depend AS d ON d.objid = t.oid AND d.deptype = 'e'"
        " JOIN pg_catalog.pg_extension AS e ON e.oid = d.refobjid AND e.extname = 'vector'"
        " WHERE t.typname = 'vector'"
    ).fetchone()
    if row is None:
        raise SchemaVersionError("the vector extension (pgvector) is not installed in this database")
    register_vector_info(conn, TypeInfo.fetch(conn, row["name"]))


class MemoryStore:
    """Memories in PostgreSQL. Create with MemoryStore.connect(); every method is one SQL call."""

    def __init__(self, conn: psycopg.Connection, *, default_domain: str | None = None,
                 embedder: Any = None, dsn: str | None = None,
                 read_conn: psycopg.Connection | None = None) -> None:
        self.conn = conn
        self.read_conn = read_conn  # searches and diagnostics (a replica), else None: conn
        self.dsn = dsn
        self.default_domain = default_domain or config.default_domain()
        self.embedder = embedder

    # -- connecting -------------------------------------------------------------------------
    @classmethod
    def connect(cls, dsn: str | None = None, *, default_domain: str | None = None,
                embedder: Any = _UNSET, migrate: bool = False,
                read_dsn: str | None = None) -> "MemoryStore":
        """Connect synchronously and verify the schema version before returning.

        dsn: argument, DATABASE_URL, POSTGRES_* or (none of these) the embedded default.
        read_dsn: argument or DATABASE_READ_URL: a read replica for searches, domains, coverage
        and diagnose (writes, get and the queue stay on dsn). Unset: everything uses dsn.
        embedder: an Embedder, None for none, or (default) the one PGMEMO_EMBEDDER names.
        migrate: run `pgmemo migrate` first (used by the embedded default and the demo).
        """
        resolved = config.resolve_dsn(dsn)
        if migrate:
            from .migrate import migrate as run_migrate

            run_migrate(resolved)
        # The vector type is registered only once the schema (and the extension) is verified.
        conn = psycopg.connect(resolved, autocommit=True, row_factory=dict_row)
        try:
            cls.verify_schema(conn)
            register_vector(conn)
        except BaseException:
            conn.close()
            raise
        read_conn = None
        replica = config.read_dsn(read_dsn)
        if replica:
            try:
                read_conn = psycopg.connect(replica, autocommit=True, row_factory=dict_row)
                cls.verify_schema(read_conn)
                register_vector(read_conn)
            except BaseException:
                if read_conn is not None:
                    read_conn.close()
                conn.close()
                raise
        if embedder is _UNSET:
            from .embedders import get_embedder

            embedder = get_embedder()
        return cls(conn, default_domain=default_domain, embedder=embedder, dsn=resolved,
                   read_conn=read_conn)

    @staticmethod
    def verify_schema(conn: psycopg.Connection) -> dict[str, Any]:
        """memory.version() must exist and be at least the newest migration this client ships;
        a newer schema is accepted unless a migration this client does not know breaks older
        clients (`--! breaking-change`; docs/UPGRADING.md). conn returns rows as dicts."""
        expected = resources.schema_version()
        try:
            with conn.transaction():
                row = conn.execute("SELECT memory.version() AS v").fetchone()
        except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName,
                psycopg.errors.UndefinedTable):
            raise SchemaVersionError(
                "pgmemo is not installed in this database: run `pgmemo migrate` "
                f"(or psql -f install.sql); this client needs schema version {expected}") from None
        version = row["v"] or {}
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

    def close(self) -> None:
        if self.embedder is not None and hasattr(self.embedder, "close"):
            self.embedder.close()
        if self.read_conn is not None:
            self.read_conn.close()
        self.conn.close()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *,
              read: bool = False) -> list[dict[str, Any]]:
        conn = self.read_conn if read and self.read_conn is not None else self.conn
        try:
            return conn.execute(sql, params).fetchall()
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise ReadOnlyDatabaseError.wrap(exc) from exc

    def _value(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        rows = self._rows(sql, params)
        return None if not rows else next(iter(rows[0].values()))

    def _domain(self, domain: str | None) -> str:
        return domain or self.default_domain

    # -- domains ----------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        return self._value("SELECT memory.version()")

    def create_domain(self, domain: str | None = None, dimension: int = 768, distance: str = "cosine",
                      embedding_model: str | None = None, hnsw_m: int = 16,
                      hnsw_ef_construction: int = 64, text_config: str = "english",
                      embedding_type: str = "vector") -> str:
        """embedding_type: 'vector' (32-bit floats) or 'halfvec' (16-bit: half the index size)."""
        return str(self._value(
            "SELECT memory.create_domain(%s, %s, %s, %s, %s, %s, %s::regconfig, %s)::text",
            (self._domain(domain), dimension, distance, embedding_model, hnsw_m,
             hnsw_ef_construction, text_config, embedding_type)))

    def drop_domain(self, domain: str) -> None:
        self.conn.execute("SELECT memory.drop_domain(%s)", (domain,))

    def distribute_domain(self, domain: str | None = None, shard_count: int = 32) -> str:
        """Distribute a domain over a Citus cluster (run on the coordinator; docs/SCALING.md)."""
        return str(self._value("SELECT memory.distribute_domain(%s, %s)::text",
                               (self._domain(domain), shard_count)))

    def domains(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM memory.domains ORDER BY domain", read=True)

    # -- writing ----------------------------------------------------------------------------
    def store(self, content: str, domain: str | None = None, metadata: dict | None = None,
              embedding: Iterable[float] | None = None, id: str | None = None) -> str:
        return self._value("SELECT memory.store(%s, %s, %s, %s, %s)",
                           (self._domain(domain), content, Jsonb(metadata or {}),
                            as_vector(embedding), id))

    def store_many(self, contents: Sequence[str], domain: str | None = None,
                   metadatas: Sequence[dict | None] | None = None,
                   embeddings: Sequence[Iterable[float] | None] | None = None,
                   ids: Sequence[str | None] | None = None) -> list[str]:
        rows = self._rows(
            # %b: vectors travel in binary; as text, formatting 1000 x 384 floats costs ~0.8 s.
            "SELECT memory.store_many(%s, %s, %s::jsonb[], %b, %s) AS id",
            (self._domain(domain), list(contents),
             None if metadatas is None else [_json(m) for m in metadatas],
             None if embeddings is None else [as_vector(e) for e in embeddings],
             None if ids is None else list(ids)))
        return [r["id"] for r in rows]

    def update(self, id: str, domain: str | None = None, content: str | None = None,
               metadata: dict | None = None, embedding: Iterable[float] | None = None) -> bool:
        return self._value("SELECT memory.update(%s, %s, %s, %s, %s)",
                           (self._domain(domain), id, content, _json(metadata), as_vector(embedding)))

    def forget(self, id: str, domain: str | None = None) -> bool:
        return self._value("SELECT memory.forget(%s, %s)", (self._domain(domain), id))

    def get(self, id: str, domain: str | None = None) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM memory.get(%s, %s)", (self._domain(domain), id))
        return rows[0] if rows else None

    # -- searching --------------------------------------------------------------------------
    def search(self, query_embedding: Iterable[float], domain: str | None = None, k: int = 5,
               filter: dict | None = None, min_similarity: float | None = None,
               ef_search: int | None = None, recency_half_life: timedelta | str | None = None,
               importance_weight: float | None = None) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM memory.search(%s, %s, %s, %s, %s, %s, %s::interval, %s)",
                          (self._domain(domain), as_vector(query_embedding), k, _json(filter),
                           min_similarity, ef_search, recency_half_life, importance_weight),
                          read=True)

    def search_text(self, query: str, domain: str | None = None, k: int = 5,
                    filter: dict | None = None, match: str = "all") -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM memory.search_text(%s, %s, %s, %s, %s)",
                          (self._domain(domain), query, k, _json(filter), match), read=True)

    def search_hybrid(self, query: str, query_embedding: Iterable[float] | None,
                      domain: str | None = None, k: int = 5,
                      filter: dict | None = None, *, vector_weight: float | None = None,
                      text_weight: float | None = None, rrf_k: int | None = None,
                      ef_search: int | None = None,
                      recency_half_life: timedelta | str | None = None,
                      importance_weight: float | None = None,
                      text_match: str | None = None) -> list[dict[str, Any]]:
        # Only the knobs given are sent, so the SQL defaults (chosen by bench/quality.py) apply.
        knobs = {"vector_weight": vector_weight, "text_weight": text_weight, "rrf_k": rrf_k,
                 "ef_search": ef_search, "recency_half_life": recency_half_life,
                 "importance_weight": importance_weight, "text_match": text_match}
        given = {name: value for name, value in knobs.items() if value is not None}
        named = "".join(f", {name} => %({name})s" + ("::interval" if name == "recency_half_life" else "")
                        for name in given)
        return self._rows("SELECT * FROM memory.search_hybrid(%(domain)s, %(query)s, %(embedding)s, "
                          "%(k)s, %(filter)s" + named + ")",
                          {"domain": self._domain(domain), "query": query,
                           "embedding": as_vector(query_embedding), "k": k, "filter": _json(filter),
                           **given}, read=True)

    def create_hnsw_index(self, domain: str | None = None, m: int = 16, ef_construction: int = 64) -> str:
        return self._value("SELECT memory.create_hnsw_index(%s, %s, %s)",
                           (self._domain(domain), m, ef_construction))

    def bulk_load_begin(self, domain: str | None = None) -> list[str]:
        """Defer the domain's indexes and enqueue trigger for a bulk load (sql/70_bulk.sql)."""
        return self._value("SELECT memory.bulk_load_begin(domain => %s)", (self._domain(domain),))

    def bulk_load_finish(self, domain: str | None = None, maintenance_work_mem: str | None = None,
                         parallel_workers: int | None = None) -> dict[str, Any]:
        """Build the deferred indexes once and queue rows loaded without embeddings."""
        return self._value(
            "SELECT memory.bulk_load_finish(domain => %s, maintenance_work_mem => %s,"
            " parallel_workers => %s)",
            (self._domain(domain), maintenance_work_mem, parallel_workers))

    # -- the API users of the old SQLite/FAISS store call -----------------------------------
    def store_memory(self, content: str, domain: str | None = None, source: str | None = None,
                     importance: float | None = None, metadata: dict | None = None,
                     id: str | None = None) -> str:
        """Store a memory, embedding it now when an embedder is configured (upsert when id
        is given).

        If the embedder fails, the row is stored anyway and left to the queue (a warning is
        logged): a write is never lost.
        """
        meta = dict(metadata or {})
        if source is not None:
            meta["source"] = source
        if importance is not None:
            if not isinstance(importance, (int, float)) or math.isnan(importance):
                raise ValueError(f"importance must be a number, got {importance!r}")
            meta["importance"] = importance
        embedding = None
        if self.embedder is not None:
            embedding = self._embed_or_none(content, "store_memory")
        return self.store(content, domain=domain, metadata=meta, embedding=embedding, id=id)

    def search_memories(self, query: str, domain: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
        """Semantic search when the query can be embedded, else full-text; each result says
        which in `mode` ('vector' or 'text')."""
        embedding = self._embed_or_none(query, "search_memories") if self.embedder else None
        if embedding is not None:
            rows = self.search(embedding, domain=domain, k=limit)
            mode = "vector"
        else:
            rows = self.search_text(query, domain=domain, k=limit)
            mode = "text"
        return [{**r, "mode": mode} for r in rows]

    def _embed_or_none(self, text: str, what: str) -> list[float] | None:
        from .embedders import EmbeddingError

        try:
            return self.embedder.embed([text])[0]
        except EmbeddingError as exc:
            log.warning("%s: embedding with %s failed (%s); %s", what,
                        getattr(self.embedder, "name", "embedder"), exc,
                        "row stored without embedding, the queue will embed it"
                        if what == "store_memory" else "falling back to full-text search")
            return None

    # -- queue and diagnostics --------------------------------------------------------------
    def enqueue_missing(self, domain: str | None = None) -> int:
        return self._value("SELECT memory.enqueue_missing(%s)", (domain,))

    def queue_counts(self, domain: str | None = None) -> dict[str, int]:
        """Jobs by state (ready, waiting, claimed, dead), of one domain or all."""
        return self._rows("SELECT * FROM memory.queue_counts(%s)", (domain,))[0]

    def requeue_dead(self, domain: str | None = None) -> int:
        return self._value("SELECT memory.requeue_dead(%s)", (domain,))

    def run_maintenance(self) -> dict[str, Any]:
        return self._value("SELECT memory.run_maintenance()")

    def coverage(self, domain: str | None = None) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM memory.embedding_coverage WHERE %s::text IS NULL OR domain = %s"
                          " ORDER BY domain", (domain, domain), read=True)

    def diagnose(self, domain: str | None = None) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM memory.diagnose(%s)", (domain,), read=True)

    def vector_indexes(self, domain: str | None = None) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM memory.vector_indexes WHERE %s::text IS NULL OR domain = %s"
                          " ORDER BY domain, index_name", (domain, domain), read=True)

    def queue_status(self, domain: str | None = None) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM memory.queue_status WHERE %s::text IS NULL OR domain = %s"
                          " ORDER BY domain", (domain, domain), read=True)

    def workers(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM memory.workers ORDER BY worker", read=True)

    def explain_search(self, domain: str | None = None, k: int = 10) -> dict[str, Any]:
        return self._rows("SELECT * FROM memory.explain_search(%s, %s)",
                          (self._domain(domain), k), read=True)[0]

    def apply_fix(self, fix_sql: str) -> None:
        """Run one fix_sql statement that memory.diagnose() produced (autocommit, so
        REINDEX/CREATE INDEX CONCURRENTLY work)."""
        self.conn.execute(fix_sql)
