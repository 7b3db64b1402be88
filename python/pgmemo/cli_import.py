"""`pgmemo import-sqlite`: bring memories from the old SQLite + FAISS store into a domain.

SQLite and FAISS are only read (they are the source). Everything written goes through
`memory.import_rows` (one transaction per batch, idempotent: ids are the SQLite ids), so an
import that is interrupted and run again ends with exactly the same rows, and a second run adds
nothing. Vectors come from the FAISS index, by position (row i in rowid order = vector i) or
through an IndexIDMap's ids; rows get none when the index's dimension differs from the domain's
or when a row has no vector, and the queue embeds those. At the end every imported row is read
back (`memory.get_many`) and compared field by field, and a sample vector by vector.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class SourceError(click.ClickException):
    """A problem with the source (named clearly, exit code 1)."""


def register(main: click.Group) -> None:
    main.add_command(import_sqlite)


# -- reading the source -----------------------------------------------------------------------
@dataclass
class Columns:
    id: str = "id"
    content: str = "content"
    metadata: str | None = "metadata"
    source: str | None = "source"
    importance: str | None = "importance"
    created: str | None = "created_at"
    updated: str | None = "updated_at"


@dataclass
class SourceRow:
    rowid: int
    id: str
    raw_id: Any
    content: str
    metadata: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None


@dataclass
class Faiss:
    path: str
    ntotal: int
    dimension: int
    ids: list[int] | None  # the IndexIDMap's ids, else None (vectors by position)
    vectors: Any  # numpy float32 array (ntotal, dimension)

    def mode(self) -> str:
        return "id map" if self.ids is not None else "position"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _timestamp(value: Any, what: str, warnings: list[str]) -> datetime | None:
    """SQLite has no timestamp type: ISO text ('2024-05-01 12:00:00', with or without a zone)
    or a Unix epoch number. A naive time is taken as UTC."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)):
            seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        text = str(value).strip().replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        if len(warnings) < 20:
            warnings.append(f"{what}: unreadable time {value!r} (left to the default)")
        return None


def _metadata(row: sqlite3.Row, cols: Columns, present: set[str], rid: str,
              warnings: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if cols.metadata and cols.metadata in present and row[cols.metadata] not in (None, ""):
        raw = row[cols.metadata]
        try:
            parsed = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            meta.update(parsed)
        else:
            meta["metadata"] = raw if parsed is None else parsed
            if len(warnings) < 20:
                warnings.append(f"row {rid}: metadata is not a JSON object, kept under \"metadata\"")
    if cols.source and cols.source in present and row[cols.source] is not None:
        meta["source"] = row[cols.source]
    if cols.importance and cols.importance in present and row[cols.importance] is not None:
        value = row[cols.importance]
        if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
            meta["importance"] = value
        else:
            try:
                meta["importance"] = float(value)
            except (TypeError, ValueError):
                meta["importance"] = value
    return meta


def open_sqlite(path: Path, table: str, cols: Columns, explicit: set[str]) -> tuple[sqlite3.Connection, set[str]]:
    if not path.exists():
        raise SourceError(f"SQLite file {path} does not exist")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        info = db.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path} is not a readable SQLite database: {exc}") from None
    if not info:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        raise SourceError(f"table {table!r} not found in {path} (tables: {', '.join(tables) or 'none'}); "
                           "use --table")
    present = {r["name"] for r in info}
    for option, name in (("--id-column", cols.id), ("--content-column", cols.content)):
        if name not in present:
            raise SourceError(f"column {name!r} ({option}) not found in table {table!r}; "
                               f"columns: {', '.join(sorted(present))}")
    for option in explicit:
        name = getattr(cols, option)
        if name and name not in present:
            raise SourceError(f"column {name!r} (--{option}-column) not found in table {table!r}; "
                               f"columns: {', '.join(sorted(present))}")
    return db, present


def read_rows(db: sqlite3.Connection, table: str, cols: Columns, present: set[str],
              warnings: list[str]) -> Iterator[SourceRow]:
    try:
        cursor = db.execute(f"SELECT rowid AS pgmemo_rowid, * FROM {_quote(table)} ORDER BY rowid")
    except sqlite3.OperationalError:  # WITHOUT ROWID table: the id orders it
        cursor = db.execute(f"SELECT NULL AS pgmemo_rowid, * FROM {_quote(table)} ORDER BY {_quote(cols.id)}")
    for n, row in enumerate(cursor):
        raw_id = row[cols.id]
        if raw_id is None:
            raise SourceError(f"row {n + 1} of {table!r} has a NULL {cols.id}: every memory needs an id")
        rid = str(raw_id)
        content = row[cols.content]
        if content is None:
            raise SourceError(f"row {rid} of {table!r} has a NULL {cols.content}")
        yield SourceRow(
            rowid=row["pgmemo_rowid"] if row["pgmemo_rowid"] is not None else n + 1,
            id=rid, raw_id=raw_id, content=str(content),
            metadata=_metadata(row, cols, present, rid, warnings),
            created_at=_timestamp(row[cols.created], f"row {rid} {cols.created}", warnings)
            if cols.created and cols.created in present else None,
            updated_at=_timestamp(row[cols.updated], f"row {rid} {cols.updated}", warnings)
            if cols.updated and cols.updated in present else None,
        )


def load_faiss(path: Path) -> Faiss:
    try:
        import faiss
    except ImportError:
        raise SourceError("--faiss needs faiss-cpu: pip install 'pgmemo[faiss]'") from None
    import numpy as np

    if not path.exists():
        raise SourceError(f"FAISS index {path} does not exist")
    try:
        raw = faiss.read_index(str(path))  # owns the C++ object: keep it alive below
        index = faiss.downcast_index(raw)
    except RuntimeError as exc:
        raise SourceError(f"cannot read FAISS index {path}: {str(exc).strip().splitlines()[-1]}") from None
    ids = None
    inner = index
    if hasattr(index, "id_map"):  # IndexIDMap / IndexIDMap2
        ids = [int(x) for x in faiss.vector_to_array(index.id_map)]
        inner = faiss.downcast_index(index.index)
    n = int(index.ntotal)
    try:
        vectors = inner.reconstruct_n(0, n) if n else np.zeros((0, index.d), dtype="float32")
    except RuntimeError:
        if not hasattr(inner, "make_direct_map"):
            raise SourceError(f"FAISS index {path} ({type(inner).__name__}) cannot give its vectors "
                               "back (reconstruct): import without --faiss and let the queue "
                               "embed the rows") from None
        inner.make_direct_map()
        vectors = inner.reconstruct_n(0, n)
    result = Faiss(str(path), n, int(index.d), ids, np.asarray(vectors, dtype="float32"))
    del raw
    return result


# -- the import -------------------------------------------------------------------------------
@dataclass
class Report:
    sqlite: str
    table: str
    domain: str
    dimension: int | None = None
    source_rows: int = 0
    faiss: dict[str, Any] | None = None
    vectors_used: int = 0
    vectors_missing: int = 0  # rows with no vector in the index
    vectors_ignored: int = 0  # vectors of another dimension than the domain's
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    existing: int | None = None  # dry run: rows already in the domain
    batches: int = 0
    dry_run: bool = False
    created_domain: bool = False
    warnings: list[str] = field(default_factory=list)
    verify: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def queued(self) -> int:
        return self.source_rows - self.vectors_used

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["rows_without_vector"] = self.queued
        return out


def _vector_lookup(rows: list[SourceRow], fx: Faiss | None, map_mode: str,
                   faiss_id_column: str | None, report: Report) -> Callable[[int, SourceRow], Any]:
    """position i / row -> the FAISS vector (numpy) or None."""
    if fx is None:
        return lambda i, row: None
    mode = ("id" if fx.ids is not None else "position") if map_mode == "auto" else map_mode
    if mode == "id" and fx.ids is None:
        raise SourceError("--faiss-map id needs an IndexIDMap (this index has no id map)")
    report.faiss = {"path": fx.path, "ntotal": fx.ntotal, "dimension": fx.dimension, "map": mode}
    if mode == "position":
        if fx.ntotal != len(rows):
            report.warnings.append(f"the FAISS index has {fx.ntotal} vectors for {len(rows)} rows: "
                                   "matched by position, rows beyond its end get none")
        return lambda i, row: fx.vectors[i] if i < fx.ntotal else None
    where = {fid: pos for pos, fid in enumerate(fx.ids)}

    def key(row: SourceRow) -> int | None:
        if faiss_id_column == "rowid":
            return row.rowid
        try:
            return int(row.raw_id)
        except (TypeError, ValueError):
            return row.rowid  # text ids: the old store keyed FAISS by rowid

    def lookup(i: int, row: SourceRow) -> Any:
        pos = where.get(key(row))
        return None if pos is None else fx.vectors[pos]
    return lookup


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_import(db_or_store: Any, sqlite_path: Path, table: str, domain: str, *, cols: Columns,
               explicit: set[str] = frozenset(), faiss_path: Path | None = None,
               faiss_map: str = "auto", faiss_id_column: str | None = None,
               batch_size: int = 1000, dry_run: bool = False, sample: int = 100,
               dimension: int | None = None, distance: str = "cosine",
               progress: Callable[[int, int], None] | None = None,
               write_batch: Callable[..., dict[str, int]] | None = None) -> Report:
    """The whole import; returns its report (see `pgmemo import-sqlite --help`).
    db_or_store: a MemoryStore (used, not closed) or a DSN (a store is opened and closed)."""
    from .client import MemoryStore

    t0 = time.monotonic()
    report = Report(sqlite=str(sqlite_path), table=table, domain=domain, dry_run=dry_run)
    db, present = open_sqlite(sqlite_path, table, cols, explicit)
    try:
        rows = list(read_rows(db, table, cols, present, report.warnings))
    finally:
        db.close()
    report.source_rows = len(rows)
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise SourceError(f"id {row.id!r} appears twice in {table!r}: ids must be unique")
        seen.add(row.id)
    fx = load_faiss(faiss_path) if faiss_path else None
    vector_of = _vector_lookup(rows, fx, faiss_map, faiss_id_column, report)

    store = (MemoryStore.connect(db_or_store, embedder=None) if isinstance(db_or_store, str)
             else db_or_store)
    try:
        existing = next((d for d in store.domains() if d["domain"] == domain), None)
        if existing is None:
            dim = dimension or (fx.dimension if fx else None)
            if dim is None:
                raise SourceError(f"domain {domain!r} does not exist: create it (pgmemo domain create), "
                                   "or give --dimension or --faiss to create it here")
            report.created_domain = True
            if not dry_run:
                store.create_domain(domain, dim, distance)
        else:
            dim = existing["dimension"]
        report.dimension = dim
        if fx is not None and fx.dimension != dim:
            report.warnings.append(
                f"the FAISS vectors have {fx.dimension} dimensions, domain {domain!r} has {dim}: "
                "no vector is imported, every row is queued for embedding")

        vectors: list[Any] = []
        for i, row in enumerate(rows):
            vec = vector_of(i, row)
            if vec is None:
                if fx is not None:
                    report.vectors_missing += 1
            elif fx is not None and fx.dimension != dim:
                report.vectors_ignored += 1
                vec = None
            else:
                report.vectors_used += 1
            vectors.append(vec)

        def default_write(batch_rows: list[SourceRow], batch_vectors: list[Any]) -> dict[str, int]:
            return store.import_rows(
                domain, [r.id for r in batch_rows], [r.content for r in batch_rows],
                [r.metadata for r in batch_rows],
                [None if v is None else v.tolist() for v in batch_vectors],
                [r.created_at for r in batch_rows], [r.updated_at for r in batch_rows])

        write = write_batch or default_write
        indexes = list(range(len(rows)))
        for chunk in _batches(indexes, batch_size):
            batch_rows = [rows[i] for i in chunk]
            if dry_run:
                if existing is not None:
                    found = len(store.get_many([r.id for r in batch_rows], domain=domain,
                                               with_embeddings=False))
                    report.existing = (report.existing or 0) + found
            else:
                result = write(batch_rows, [vectors[i] for i in chunk])
                report.inserted += result["inserted"]
                report.updated += result["updated"]
                report.unchanged += result["unchanged"]
            report.batches += 1
            if progress:
                progress(len(chunk), len(rows))
        if not dry_run:
            report.verify = verify(store, domain, rows, vectors, sample)
    finally:
        if store is not db_or_store:
            store.close()
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def verify(store: Any, domain: str, rows: list[SourceRow], vectors: list[Any],
           sample: int, batch_size: int = 1000) -> dict[str, Any]:
    """Read every imported row back: ids, content, metadata and created_at for all of them,
    vectors for `sample` random rows that had one (0: all)."""
    import numpy as np

    with_vec = [i for i, v in enumerate(vectors) if v is not None]
    chosen = set(with_vec if sample == 0 or sample >= len(with_vec)
                 else random.Random(0).sample(with_vec, sample))
    found = 0
    mismatches: list[str] = []
    vector_mismatches: list[str] = []
    compared = 0
    for chunk in _batches(list(range(len(rows))), batch_size):
        ids = [rows[i].id for i in chunk]
        stored = {r["id"]: r for r in store.get_many(ids, domain=domain, with_embeddings=False)}
        want_vec = [rows[i].id for i in chunk if i in chosen]
        stored_vec = {r["id"]: r["embedding"] for r in store.get_many(want_vec, domain=domain)
                      } if want_vec else {}
        for i in chunk:
            row = rows[i]
            got = stored.get(row.id)
            if got is None:
                mismatches.append(f"{row.id}: missing")
                continue
            found += 1
            for name, want, have in (("content", row.content, got["content"]),
                                     ("metadata", row.metadata, got["metadata"])):
                if want != have:
                    mismatches.append(f"{row.id}: {name} differs")
            if row.created_at is not None and got["created_at"] != row.created_at:
                mismatches.append(f"{row.id}: created_at differs ({got['created_at']} != {row.created_at})")
            if i in chosen:
                compared += 1
                have_vec = stored_vec.get(row.id)
                if have_vec is None or not np.array_equal(
                        np.asarray(have_vec.to_numpy(), dtype="float32"), vectors[i]):
                    vector_mismatches.append(row.id)
    return {"rows_expected": len(rows), "rows_found": found,
            "field_mismatches": len(mismatches), "examples": mismatches[:10],
            "vectors_compared": compared, "vector_mismatches": len(vector_mismatches),
            "vector_mismatch_ids": vector_mismatches[:10],
            "ok": found == len(rows) and not mismatches and not vector_mismatches}


def _print_report(r: Report) -> None:
    d = r.as_dict()
    lines = [f"{'DRY RUN: nothing was written. ' if r.dry_run else ''}"
             f"{r.source_rows} rows from {r.sqlite} ({r.table}) -> domain {r.domain} "
             f"({r.dimension} dimensions{', created' if r.created_domain else ''})"]
    if r.faiss:
        lines.append(f"FAISS {r.faiss['path']}: {r.faiss['ntotal']} vectors of {r.faiss['dimension']} "
                     f"dimensions, matched by {r.faiss['map']}")
    lines.append(f"vectors imported: {r.vectors_used}; rows without one (queued for embedding): "
                 f"{d['rows_without_vector']} (missing in the index: {r.vectors_missing}, other "
                 f"dimension: {r.vectors_ignored})")
    if r.dry_run:
        lines.append(f"already in the domain: {r.existing or 0}; would be new: "
                     f"{r.source_rows - (r.existing or 0)}")
    else:
        lines.append(f"inserted {r.inserted}, updated {r.updated}, unchanged {r.unchanged} "
                     f"in {r.batches} batches, {r.seconds:.1f}s")
        v = r.verify
        lines.append(f"verified: {v['rows_found']}/{v['rows_expected']} rows found, "
                     f"{v['field_mismatches']} field mismatches, {v['vectors_compared']} vectors "
                     f"compared, {v['vector_mismatches']} differ -> {'OK' if v['ok'] else 'FAILED'}")
        for example in v["examples"]:
            lines.append(f"  {example}")
    for w in r.warnings:
        lines.append(f"warning: {w}")
    click.echo("\n".join(lines))


@click.command("import-sqlite", context_settings=CONTEXT)
@click.option("--sqlite", "sqlite_path", required=True, type=click.Path(path_type=Path),
              help="The SQLite database file (read only).")
@click.option("--table", default="memories", show_default=True, help="Table holding the memories.")
@click.option("--faiss", "faiss_path", type=click.Path(path_type=Path), default=None,
              help="FAISS index with the vectors (flat or IndexIDMap); without it every row is queued.")
@click.option("--faiss-map", type=click.Choice(["auto", "position", "id"]), default="auto",
              show_default=True,
              help="How vectors match rows: position (vector i = row i in rowid order), id (the "
                   "IndexIDMap id = the integer id column, or the rowid for text ids); auto: id "
                   "when the index has an id map.")
@click.option("--faiss-id-column", type=click.Choice(["id", "rowid"]), default=None,
              help="With an id map: match FAISS ids to the id column (default when it is an "
                   "integer) or to the SQLite rowid.")
@click.option("--domain", required=True, help="Target domain (created with the FAISS dimension "
              "or --dimension when missing).")
@click.option("--dimension", type=click.IntRange(1, 2000), default=None,
              help="Dimension for a domain created here (default: the FAISS index's).")
@click.option("--distance", type=click.Choice(["cosine", "l2", "inner_product"]), default="cosine",
              show_default=True, help="Distance for a domain created here.")
@click.option("--id-column", default="id", show_default=True,
              help="The SQLite column holding each memory's id (kept as the pgmemo id).")
@click.option("--content-column", default="content", show_default=True,
              help="The SQLite column holding each memory's text.")
@click.option("--metadata-column", default=None, help="JSON text column merged into metadata [metadata].")
@click.option("--source-column", default=None, help="Stored as metadata.source [source].")
@click.option("--importance-column", default=None, help="Stored as metadata.importance [importance].")
@click.option("--created-column", default=None, help="Creation time [created_at].")
@click.option("--updated-column", default=None, help="Last update time [updated_at].")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=1000, show_default=True,
              help="Rows per memory.import_rows call (one transaction each).")
@click.option("--sample", type=click.IntRange(0, None), default=100, show_default=True,
              help="Vectors compared one by one after the import (0: all).")
@click.option("--dry-run", is_flag=True, help="Read and match everything, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def import_sqlite(ctx: click.Context, sqlite_path: Path, table: str, faiss_path: Path | None,
                  faiss_map: str, faiss_id_column: str | None, domain: str, dimension: int | None,
                  distance: str, id_column: str, content_column: str, metadata_column: str | None,
                  source_column: str | None, importance_column: str | None,
                  created_column: str | None, updated_column: str | None, batch_size: int,
                  sample: int, dry_run: bool, as_json: bool) -> None:
    """Import memories from an SQLite table (and their vectors from a FAISS index).

    Maps id, content, metadata (JSON text; source and importance go into it), created_at and
    updated_at. Idempotent: ids are kept, so running it again adds nothing and an interrupted
    import resumes where it stopped. Ends with a verification report; exit code 1 if it fails.
    """
    explicit = {name for name, value in (("metadata", metadata_column), ("source", source_column),
                                          ("importance", importance_column),
                                          ("created", created_column), ("updated", updated_column))
                if value is not None}
    cols = Columns(id=id_column, content=content_column,
                   metadata=metadata_column or "metadata", source=source_column or "source",
                   importance=importance_column or "importance",
                   created=created_column or "created_at", updated=updated_column or "updated_at")
    store = ctx.obj.store(embedder=False)   # one connection, schema version checked
    with click.progressbar(length=1, label="importing", file=sys.stderr, show_eta=True,
                           show_percent=True) as bar:
        def progress(n: int, total: int) -> None:
            bar.length = max(total, 1)  # known once the source is read
            bar.update(n)

        report = run_import(store, sqlite_path, table, domain, cols=cols, explicit=explicit,
                            faiss_path=faiss_path, faiss_map=faiss_map,
                            faiss_id_column=faiss_id_column, batch_size=batch_size,
                            dry_run=dry_run, sample=sample, dimension=dimension,
                            distance=distance, progress=progress)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _print_report(report)
    if report.verify and not report.verify["ok"]:
        sys.exit(1)
