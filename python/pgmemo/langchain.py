"""LangChain: `PgmemoVectorStore`, a VectorStore over one pgmemo domain (`pip install
'pgmemo[langchain]'`).

Every operation is one call of pgmemo's SQL API through the client: add/upsert with ids
(memory.store_many), delete by ids (memory.forget_many) or all (memory.clear), get_by_ids
(memory.get_many, in the order asked), similarity search with scores and filters (memory.search,
filters passed through unchanged), MMR (memory.search(..., with_embeddings => true), one round
trip). The async methods are native: they await an AsyncMemoryStore, never a thread.

    from pgmemo import MemoryStore
    from pgmemo.langchain import PgmemoVectorStore

    vs = PgmemoVectorStore(embeddings, "docs", store=MemoryStore.connect(embedder=None))
    retriever = vs.as_retriever(search_kwargs={"k": 4})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from .client import AsyncMemoryStore, MemoryStore

__all__ = ["PgmemoVectorStore"]


class PgmemoVectorStore(VectorStore):
    """A LangChain VectorStore over the pgmemo domain `domain`.

    store: a MemoryStore for the sync methods; async_store: an AsyncMemoryStore for the async
    ones (give either or both). With a sync store the domain is created when missing, with the
    embeddings' dimension (or `dimension`) and `distance`; with only an async store, call
    `await vs.aensure_domain()` (afrom_texts does). Scores from similarity_search_with_score are
    distances (lower is closer); relevance scores are in [0, 1] for cosine and l2.
    """

    def __init__(self, embedding: Embeddings, domain: str | None = None, *,
                 store: MemoryStore | None = None, async_store: AsyncMemoryStore | None = None,
                 dimension: int | None = None, distance: str = "cosine",
                 create_domain: bool = True) -> None:
        if store is None and async_store is None:
            raise ValueError("PgmemoVectorStore needs store= (MemoryStore) or "
                             "async_store= (AsyncMemoryStore), or both")
        self.embedding = embedding
        self.store = store
        self.async_store = async_store
        self.domain = domain or (store or async_store).default_domain
        self.dimension = dimension
        self.distance = distance
        if store is not None and create_domain:
            self.ensure_domain()

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    # -- the domain -----------------------------------------------------------------------------
    def _known(self, domains: list[dict[str, Any]]) -> bool:
        for d in domains:
            if d["domain"] == self.domain:
                self.distance = d["distance"]
                return True
        return False

    def ensure_domain(self) -> None:
        """Create the domain when it does not exist (dimension probed from the embeddings)."""
        if not self._known(self._sync.domains()):
            dim = self.dimension or len(self.embedding.embed_query("dimension probe"))
            self._sync.create_domain(self.domain, dim, self.distance)

    async def aensure_domain(self) -> None:
        if not self._known(await self._async.domains()):
            dim = self.dimension or len(await self.embedding.aembed_query("dimension probe"))
            await self._async.create_domain(self.domain, dim, self.distance)

    @property
    def _sync(self) -> MemoryStore:
        if self.store is None:
            raise RuntimeError("this PgmemoVectorStore has no sync store: pass store= "
                               "(MemoryStore), or use the async methods")
        return self.store

    @property
    def _async(self) -> AsyncMemoryStore:
        if self.async_store is None:
            raise RuntimeError("this PgmemoVectorStore has no async store: pass async_store= "
                               "(AsyncMemoryStore), or use the sync methods")
        return self.async_store

    # -- writing ----------------------------------------------------------------------------------
    @staticmethod
    def _rows(texts: Iterable[str], metadatas: list[dict] | None,
              ids: Sequence[str | None] | None) -> tuple[list[str], list[dict] | None, list | None]:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"{len(metadatas)} metadatas for {len(texts)} texts")
        if ids is not None:
            ids = list(ids)
            if len(ids) != len(texts):
                raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        return texts, metadatas, ids

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        """Embed and store texts (memory.store_many); an id that exists is replaced (upsert)."""
        texts, metadatas, ids = self._rows(texts, metadatas, ids)
        if not texts:
            return []
        vectors = self.embedding.embed_documents(texts)
        return self._sync.store_many(texts, domain=self.domain, metadatas=metadatas,
                                     embeddings=vectors, ids=ids)

    async def aadd_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                         ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        texts, metadatas, ids = self._rows(texts, metadatas, ids)
        if not texts:
            return []
        vectors = await self.embedding.aembed_documents(texts)
        return await self._async.store_many(texts, domain=self.domain, metadatas=metadatas,
                                            embeddings=vectors, ids=ids)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete by ids (memory.forget_many), or every document when ids is None
        (memory.clear: the domain and its indexes stay)."""
        if ids is None:
            self._sync.clear(domain=self.domain)
        else:
            self._sync.forget_many(ids, domain=self.domain)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        if ids is None:
            await self._async.clear(domain=self.domain)
        else:
            await self._async.forget_many(ids, domain=self.domain)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in the order asked (missing ids are skipped)."""
        rows = self._sync.get_many(list(ids), domain=self.domain, with_embeddings=False)
        return [_document(r) for r in rows]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        rows = await self._async.get_many(list(ids), domain=self.domain, with_embeddings=False)
        return [_document(r) for r in rows]

    # -- searching --------------------------------------------------------------------------------
    def similarity_search(self, query: str, k: int = 4, filter: dict | None = None,
                          **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, filter: dict | None = None,
                                 **kwargs: Any) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, filter,
                                                                         **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """(document, distance) pairs, closest first; filter goes to memory.search as is."""
        return self.similarity_search_with_score_by_vector(
            self.embedding.embed_query(query), k, filter, **kwargs)

    async def asimilarity_search_with_score(self, query: str, k: int = 4,
                                            filter: dict | None = None,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        return await self.asimilarity_search_with_score_by_vector(
            await self.embedding.aembed_query(query), k, filter, **kwargs)

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                               filter: dict | None = None,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        rows = self._sync.search(embedding, domain=self.domain, k=k, filter=filter,
                                 **_search_options(kwargs))
        return [(_document(r), r["distance"]) for r in rows]

    async def asimilarity_search_with_score_by_vector(
            self, embedding: list[float], k: int = 4, filter: dict | None = None,
            **kwargs: Any) -> list[tuple[Document, float]]:
        rows = await self._async.search(embedding, domain=self.domain, k=k, filter=filter,
                                        **_search_options(kwargs))
        return [(_document(r), r["distance"]) for r in rows]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                    filter: dict | None = None, **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter,
                                                                            **kwargs)]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                           filter: dict | None = None,
                                           **kwargs: Any) -> list[Document]:
        return [d for d, _ in await self.asimilarity_search_with_score_by_vector(
            embedding, k, filter, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return {"cosine": self._cosine_relevance_score_fn,
                "l2": self._euclidean_relevance_score_fn,
                "inner_product": self._max_inner_product_relevance_score_fn}[self.distance]

    # -- maximal marginal relevance: candidates and their vectors in one call ---------------------
    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                      lambda_mult: float = 0.5, filter: dict | None = None,
                                      **kwargs: Any) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self.embedding.embed_query(query), k, fetch_k, lambda_mult, filter, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5,
                                             filter: dict | None = None,
                                             **kwargs: Any) -> list[Document]:
        return await self.amax_marginal_relevance_search_by_vector(
            await self.embedding.aembed_query(query), k, fetch_k, lambda_mult, filter, **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                fetch_k: int = 20, lambda_mult: float = 0.5,
                                                filter: dict | None = None,
                                                **kwargs: Any) -> list[Document]:
        rows = self._sync.search(embedding, domain=self.domain, k=max(k, fetch_k),
                                 filter=filter, with_embeddings=True, **_search_options(kwargs))
        return _mmr(embedding, rows, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                       fetch_k: int = 20,
                                                       lambda_mult: float = 0.5,
                                                       filter: dict | None = None,
                                                       **kwargs: Any) -> list[Document]:
        rows = await self._async.search(embedding, domain=self.domain, k=max(k, fetch_k),
                                        filter=filter, with_embeddings=True,
                                        **_search_options(kwargs))
        return _mmr(embedding, rows, k, lambda_mult)

    # -- constructors -----------------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings,
                   metadatas: list[dict] | None = None, *, ids: list[str] | None = None,
                   domain: str | None = None, store: MemoryStore | None = None,
                   dsn: str | None = None, **kwargs: Any) -> "PgmemoVectorStore":
        """A store over `domain` (created when missing) holding texts; store= or dsn= (else
        DATABASE_URL / the embedded default)."""
        store = store or MemoryStore.connect(dsn, embedder=None)
        vs = cls(embedding, domain, store=store, **kwargs)
        vs.add_texts(texts, metadatas, ids=ids)
        return vs

    @classmethod
    async def afrom_texts(cls, texts: list[str], embedding: Embeddings,
                          metadatas: list[dict] | None = None, *, ids: list[str] | None = None,
                          domain: str | None = None, async_store: AsyncMemoryStore | None = None,
                          dsn: str | None = None, **kwargs: Any) -> "PgmemoVectorStore":
        async_store = async_store or await AsyncMemoryStore.connect(dsn, embedder=None)
        vs = cls(embedding, domain, async_store=async_store, **kwargs)
        await vs.aensure_domain()
        await vs.aadd_texts(texts, metadatas, ids=ids)
        return vs


_SEARCH_OPTIONS = ("min_similarity", "ef_search", "recency_half_life", "importance_weight")


def _search_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """memory.search's own knobs, passed through; anything else is a mistake worth naming."""
    unknown = set(kwargs) - set(_SEARCH_OPTIONS)
    if unknown:
        raise TypeError(f"unknown search option(s) {sorted(unknown)}; pgmemo takes "
                        f"{', '.join(_SEARCH_OPTIONS)}")
    return kwargs


def _document(row: dict[str, Any]) -> Document:
    return Document(id=row["id"], page_content=row["content"], metadata=row["metadata"] or {})


def _mmr(query: list[float], rows: list[dict[str, Any]], k: int,
         lambda_mult: float) -> list[Document]:
    if not rows:
        return []
    vectors = [r["embedding"].to_list() for r in rows]
    chosen = maximal_marginal_relevance(np.array(query, dtype=np.float32), vectors,
                                        lambda_mult=lambda_mult, k=k)
    return [_document(rows[i]) for i in chosen]

