"""The filter language through the Python client and the CLI: filters go to SQL unchanged (the
operators, dotted keys and columns are the database's), malformed ones come back as the
database's 22023 error naming the bad part, and count / explain_search / create_metadata_index
round-trip."""

from __future__ import annotations

import json

import psycopg
import pytest

from helpers import cli

DOCS = [
    ("a", {"user": "ann", "year": 2023, "tags": ["x", "y"], "specs": {"screen": "OLED"}}, [1, 0, 0]),
    ("b", {"user": "bob", "year": 2024, "tags": ["y"]}, [0, 1, 0]),
    ("c", {"user": "cy", "year": 2025, "draft": True}, [0, 0, 1]),
]


@pytest.fixture
def docs(store):
    store.create_domain("f", dimension=3)
    store.store_many([f"memory {i}" for i, _, _ in DOCS], domain="f",
                     metadatas=[m for _, m, _ in DOCS], embeddings=[v for _, _, v in DOCS],
                     ids=[i for i, _, _ in DOCS])
    return store


CASES = [
    ({"user": "ann"}, ["a"]),
    ({"year": {"$gte": 2024}}, ["b", "c"]),
    ({"year": {"$between": [2023, 2024]}, "tags": ["y"]}, ["a", "b"]),
    ({"$or": [{"user": {"$in": ["bob", "cy"]}}, {"specs.screen": "OLED"}]}, ["a", "b", "c"]),
    ({"$not": {"draft": {"$exists": True}}}, ["a", "b"]),
    ({"user": {"$like": "b%"}}, ["b"]),
    ({"id": {"$in": ["a", "c"]}}, ["a", "c"]),
    ({"created_at": {"$gt": "2000-01-01T00:00:00Z"}, "user": {"$ne": "ann"}}, ["b", "c"]),
]


@pytest.mark.parametrize("flt,expected", CASES, ids=[json.dumps(c[0]) for c in CASES])
def test_filters_pass_through_unchanged(docs, flt, expected):
    s = docs
    assert sorted(r["id"] for r in s.search([1, 1, 1], domain="f", k=10, filter=flt)) == expected
    assert sorted(r["id"] for r in s.search_text("memory", domain="f", k=10, filter=flt)) == expected
    assert sorted(r["id"] for r in s.search_hybrid("memory", [1, 1, 1], domain="f", k=10,
                                                   filter=flt)) == expected
    assert s.count(domain="f", filter=flt) == len(expected)


def test_malformed_filter_is_the_databases_error(docs):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        docs.search([1, 0, 0], domain="f", filter={"$nor": [{"user": "ann"}]})
    assert exc.value.sqlstate == "22023"
    assert 'invalid filter at $.$nor: unknown operator "$nor"' in str(exc.value)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"\$and takes a non-empty array"):
        docs.count(domain="f", filter={"$and": []})


def test_count_explain_and_metadata_index(docs):
    s = docs
    assert s.count(domain="f") == 3
    plan = s.explain_search(domain="f", k=2, filter={"year": {"$lt": 2025}})
    assert plan["path"] in ("exact", "hnsw") and plan["reason"] and plan["matching_rows"] >= 1
    assert s.explain_search(domain="f")["path"] == "hnsw"
    name = s.create_metadata_index("year", "number", domain="f")
    assert name == s.create_metadata_index("year", "number", domain="f")
    assert sorted(r["id"] for r in s.search([1, 0, 0], domain="f", filter={"year": {"$lt": 2025}})) == ["a", "b"]


def test_cli_filter_operators(dsn, docs):
    code, out = cli(dsn, "search", "--domain", "f", "--embedding", "[1,1,1]", "-k", "10", "--json",
                    "--filter", '{"year": {"$gt": 2023}, "$not": {"user": "cy"}}', "memory")
    assert code == 0, out
    assert [r["id"] for r in json.loads(out)] == ["b"]
    code, out = cli(dsn, "search", "--domain", "f", "--embedding", "[1,1,1]",
                    "--filter", '{"year": {"$gt": [1]}}', "memory")
    assert code != 0 and "invalid filter at $.year.$gt" in out
