"""pgmemo.langchain.PgmemoVectorStore: LangChain's own standard VectorStore suite
(langchain-tests, sync and async, nothing overridden or skipped), then what the suite does not
cover: filters, MMR through with_embeddings, relevance scores, the retriever, errors."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from pgmemo.client import AsyncMemoryStore, MemoryStore
from pgmemo.langchain import PgmemoVectorStore


class TestPgmemoStandard(VectorStoreIntegrationTests):
    """The standard suite; only the required fixture is provided (an empty store)."""

    @pytest.fixture
    async def vectorstore(self, dsn):  # type: ignore[override]
        store = MemoryStore.connect(dsn, embedder=None)
        astore = await AsyncMemoryStore.connect(dsn, embedder=None, pool_size=2)
        try:
            yield PgmemoVectorStore(self.get_embeddings(), "lc", store=store, async_store=astore)
        finally:
            store.close()
            await astore.close()


@pytest.fixture
def vs(dsn):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    with MemoryStore.connect(dsn, embedder=None) as store:
        yield PgmemoVectorStore(DeterministicFakeEmbedding(size=8), "docs", store=store)


def test_filters_pass_through_to_memory_search(vs: PgmemoVectorStore) -> None:
    vs.add_texts(["red apple", "green apple", "red car"],
                 [{"color": "red", "kind": "fruit"}, {"color": "green", "kind": "fruit"},
                  {"color": "red", "kind": "car"}], ids=["a", "b", "c"])
    docs = vs.similarity_search("red apple", k=3, filter={"color": "red"})
    assert sorted(d.id for d in docs) == ["a", "c"]
    docs = vs.similarity_search("anything", k=3, filter={"kind": "fruit", "color": "green"})
    assert [d.id for d in docs] == ["b"]
    import psycopg

    with pytest.raises(psycopg.Error):        # the SQL's own error for a malformed filter
        vs.similarity_search("x", filter=["not", "an", "object"])  # type: ignore[arg-type]


def test_mmr_uses_the_vectors_from_the_same_call(vs: PgmemoVectorStore) -> None:
    vs.add_texts(["alpha", "alpha", "beta", "gamma"], ids=["a1", "a2", "b", "g"])
    docs = vs.max_marginal_relevance_search("alpha", k=2, fetch_k=4, lambda_mult=0.1)
    assert docs[0].page_content == "alpha"
    assert docs[1].page_content != "alpha"     # the duplicate is not chosen twice
    assert len(vs.max_marginal_relevance_search("alpha", k=3, fetch_k=4)) == 3


def test_scores_retriever_and_clear(vs: PgmemoVectorStore) -> None:
    vs.add_documents([Document(page_content="the cat sat", id="c"),
                      Document(page_content="the dog ran", id="d")])
    (doc, distance), *_ = vs.similarity_search_with_score("the cat sat", k=2)
    assert doc.id == "c" and distance == pytest.approx(0, abs=1e-6)
    (doc, relevance), *_ = vs.similarity_search_with_relevance_scores("the cat sat", k=1)
    assert relevance == pytest.approx(1, abs=1e-6)
    retriever = vs.as_retriever(search_kwargs={"k": 1})
    assert [d.id for d in retriever.invoke("the dog ran")] == ["d"]
    assert [d.id for d in vs.get_by_ids(["d", "nope", "c"])] == ["d", "c"]
    vs.delete()                                # no ids: memory.clear, the domain stays
    assert vs.similarity_search("the cat sat") == []
    assert [d["domain"] for d in vs.store.domains()] == ["docs"]
    with pytest.raises(TypeError, match="unknown search option"):
        vs.similarity_search("x", score_threshold=0.5)


async def test_async_native_over_async_memory_store(dsn) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    async with await AsyncMemoryStore.connect(dsn, embedder=None) as astore:
        vs = await PgmemoVectorStore.afrom_texts(
            ["one", "two"], DeterministicFakeEmbedding(size=8), ids=["1", "2"],
            domain="adocs", async_store=astore)
        assert [d.id for d in await vs.asimilarity_search("two", k=1)] == ["2"]
        assert [d.id for d in await vs.amax_marginal_relevance_search("two", k=1)] == ["2"]
        with pytest.raises(RuntimeError, match="no sync store"):
            vs.similarity_search("two")


def test_needs_a_store() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    with pytest.raises(ValueError, match="store="):
        PgmemoVectorStore(DeterministicFakeEmbedding(size=8), "x")
