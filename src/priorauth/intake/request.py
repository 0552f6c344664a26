"""One PAS request as received: its bytes, decoded once, indexed once, shared by every reader."""

from __future__ import annotations

from typing import Any

import orjson

from priorauth.errors import InvalidRequest
from priorauth.intake.references import BundleIndex

__all__ = ["PasRequest"]

_UNREAD: Any = object()  # not decoded yet (None is a JSON value)


class PasRequest:
    """A request Bundle: the bytes kept as received, the JSON decoded at most once and the
    one `BundleIndex` over its entries built at most once.

    $submit parses the body into one of these; the keys (pas.request), the facts
    (intake.pas_bundle), the store (its bytes) and the response (pas.response) all read
    it. A stored case holds one too, decoded only when something reads the bundle.
    """

    __slots__ = ("_bundle", "_index", "raw")

    def __init__(self, raw: bytes | None, bundle: Any = _UNREAD) -> None:
        """`raw`: the bytes as received (None for a request built in memory); `bundle`: the
        decoded JSON when already at hand (any JSON value: readers check it is a Bundle)."""
        if raw is None and bundle is _UNREAD:
            raise ValueError("a request needs its bytes or its decoded bundle")
        self.raw = raw
        self._bundle = bundle
        self._index: BundleIndex | None = None

    @classmethod
    def parse(cls, data: PasRequest | bytes | str | dict[str, Any]) -> PasRequest:
        """Decode now; InvalidRequest when the data is not JSON."""
        if isinstance(data, PasRequest):
            return data
        if isinstance(data, dict):
            return cls(None, data)
        try:
            decoded = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("the request is not valid JSON") from exc
        except TypeError as exc:
            raise InvalidRequest("the request must be JSON text") from exc
        return cls(data.encode() if isinstance(data, str) else bytes(data), decoded)

    @property
    def bundle(self) -> Any:
        """The decoded JSON (a dict for any Bundle), decoded on first use."""
        if self._bundle is _UNREAD:
            assert self.raw is not None
            self._bundle = orjson.loads(self.raw)
        return self._bundle

    @property
    def index(self) -> BundleIndex:
        """The Bundle's entries by fullUrl and "Type/id", built on first use."""
        if self._index is None:
            bundle = self.bundle
            entries = bundle.get("entry") if type(bundle) is dict else None
            self._index = BundleIndex(entries if type(entries) is list else [])
        return self._index
