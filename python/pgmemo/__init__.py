"""pgmemo: AI memories (text + embedding + JSONB metadata) in PostgreSQL with pgvector."""

from .client import AsyncMemoryStore, MemoryStore, SchemaVersionError

__version__ = "0.1.0"
__all__ = ["AsyncMemoryStore", "MemoryStore", "SchemaVersionError", "__version__"]
