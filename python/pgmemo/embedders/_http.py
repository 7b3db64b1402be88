"""Shared HTTP plumbing for remote embedders: one POST, classified errors, retries."""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from .base import Embedder, EmbeddingError, PermanentEmbeddingError, TransientEmbeddingError

log = logging.getLogger("pgmemo.embedders")

#: Statuses worth retrying; every other non-2xx status is permanent.
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def provider_message(response: httpx.Response) -> str:
    """The provider's error text: `{"error": "..."}`, `{"error": {"message": ...}}` or the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        for key in ("message", "detail"):
            if body.get(key):
                detail = body[key]
                return detail if isinstance(detail, str) else json.dumps(detail)
    text = response.text.strip()
    return text[:500] if text else response.reason_phrase


class HTTPEmbedder(Embedder):
    """An embedder that POSTs JSON to one URL, retrying transient failures."""

    def __init__(
        self,
        *,
        url: str,
        model: str,
        timeout: float,
        batch_size: int,
        max_retries: int,
        retry_wait_initial: float,
        retry_wait_max: float,
        headers: dict[str, str] | None = None,
        dimension: int | None = None,
        expected_dimension: int | None = None,
    ) -> None:
        super().__init__(
            model=model,
            batch_size=batch_size,
            dimension=dimension,
            expected_dimension=expected_dimension,
        )
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.url = url
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_wait_initial = retry_wait_initial
        self.retry_wait_max = retry_wait_max
        self._headers = headers or {}
        self._client = httpx.Client(timeout=timeout, headers=self._headers)
        self._aclient: httpx.AsyncClient | None = None

    # A provider says what to send for a batch and how to read the reply; the transport (sync
    # or async, retries, error classes) is shared.
    def _payload(self, texts: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def _vectors(self, body: Any, texts: list[str]) -> Sequence[Any]:
        raise NotImplementedError

    def _embed_batch(self, texts: list[str]) -> Sequence[Any]:
        return self._vectors(self._post(self._payload(texts)), texts)

    async def _aembed_batch(self, texts: list[str]) -> Sequence[Any]:
        return self._vectors(await self._apost(self._payload(texts)), texts)

    def _retry_args(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": self._wait,
            "retry": retry_if_exception_type(TransientEmbeddingError),
            "before_sleep": self._log_retry,
            "retry_error_callback": self._give_up,
        }

    def _post(self, payload: dict[str, Any]) -> Any:
        """POST `payload` and return the decoded JSON reply, retrying transient failures."""
        return Retrying(**self._retry_args())(self._post_once, payload)

    async def _apost(self, payload: dict[str, Any]) -> Any:
        """_post over httpx.AsyncClient (made on first use, closed by aclose())."""
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)
        return await AsyncRetrying(**self._retry_args())(self._apost_once, payload)

    async def _apost_once(self, payload: dict[str, Any]) -> Any:
        assert self._aclient is not None
        try:
            response = await self._aclient.post(self.url, json=payload)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        return self._reply(response)

    def _post_once(self, payload: dict[str, Any]) -> Any:
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        return self._reply(response)

    def _transport_error(self, exc: httpx.TransportError) -> EmbeddingError:
        """The embedding error for a failure to send (bad URL permanent, the rest transient)."""
        if isinstance(exc, httpx.UnsupportedProtocol):
            return PermanentEmbeddingError(f"{self.name}: bad URL {self.url!r}: {exc}")
        if isinstance(exc, httpx.TimeoutException):
            return TransientEmbeddingError(
                f"{self.name}: no reply from {self.url} within {self.timeout}s "
                f"({type(exc).__name__})"
            )
        return TransientEmbeddingError(
            f"{self.name}: cannot reach {self.url}: {exc or type(exc).__name__}"
        )

    def _reply(self, response: httpx.Response) -> Any:
        """The decoded JSON of a reply, or the classified error for its status."""
        status = response.status_code
        if status in TRANSIENT_STATUSES or status >= 500:
            message = provider_message(response)
            raise TransientEmbeddingError(
                f"{self.name}: HTTP {status} from {self.url}: {message}",
                status_code=status,
                provider_message=message,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if not 200 <= status < 300:
            message = provider_message(response)
            raise PermanentEmbeddingError(
                f"{self.name}: HTTP {status} from {self.url}: {message}",
                status_code=status,
                provider_message=message,
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise PermanentEmbeddingError(
                f"{self.name}: malformed reply from {self.url}: not JSON: {response.text[:200]!r}"
            ) from exc
        if isinstance(body, dict) and body.get("error"):
            error = body["error"]
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            raise PermanentEmbeddingError(
                f"{self.name}: error from {self.url}: {message}", provider_message=str(message)
            )
        return body

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter; a Retry-After header wins, both capped."""
        exponential = self.retry_wait_initial * 2.0 ** (state.attempt_number - 1)
        backoff = min(self.retry_wait_max, exponential)
        backoff *= random.uniform(0.5, 1.0)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, EmbeddingError) and exc.retry_after is not None:
            backoff = max(backoff, exc.retry_after)
        return min(backoff, self.retry_wait_max)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: attempt %d failed (%s); retrying in %.2fs",
            self.name,
            state.attempt_number,
            exc,
            sleep,
        )

    def _give_up(self, state: RetryCallState) -> NoReturn:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, TransientEmbeddingError):  # only these are retried
            raise RuntimeError("retry stopped without a transient error") from exc
        raise TransientEmbeddingError(
            f"{exc} (gave up after {state.attempt_number} attempts)",
            status_code=exc.status_code,
            provider_message=exc.provider_message,
            retry_after=exc.retry_after,
        ) from exc

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
