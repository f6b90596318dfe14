"""Transcodings for the values our events carry beyond JSON, UUID, Decimal and datetime.

Each is the event store's envelope around one codec of ``domain.values`` (the names are part
of the stored events: never change them).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.values import DATE, ENUMS, MONTH, PRICE_PLAN, ValueCodec


def codec_transcoding(codec: ValueCodec[Any]) -> Transcoding:
    """The library's ``Transcoding`` for one value codec."""

    class CodecTranscoding(Transcoding):
        type = codec.type
        name = codec.name

        def encode(self, obj: Any) -> Any:
            return codec.encode(obj)

        def decode(self, data: Any) -> Any:
            return codec.decode(data)

    CodecTranscoding.__name__ = CodecTranscoding.__qualname__ = f"{codec.type.__name__}Transcoding"
    return CodecTranscoding()


EVENT_VALUES: tuple[ValueCodec[Any], ...] = (DATE, MONTH, PRICE_PLAN, *ENUMS)
"""The value types events carry that the library does not transcode itself."""


def register_all(transcoder: JSONTranscoder) -> None:
    for codec in EVENT_VALUES:
        transcoder.register(codec_transcoding(codec))
