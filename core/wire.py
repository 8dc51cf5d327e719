"""Hand-built protobuf framing, so a batch of already-serialized spans becomes an ExportRequest
without parsing or re-serializing anything (the client's hot path)."""
from __future__ import annotations

from typing import Iterator

# ExportRequest.spans is field 1, wire type 2 (length-delimited): tag byte 0x0A.
SPANS_TAG = b"\x0a"


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def frame_header(n: int) -> bytes:
    """The tag and length that precede an ``n``-byte serialized Span in an ExportRequest."""
    if n < 0x80:  # inline the one- and two-byte lengths: nearly every span (hot path)
        return bytes((0x0A, n))
    if n < 0x4000:
        return bytes((0x0A, (n & 0x7F) | 0x80, n >> 7))
    return SPANS_TAG + encode_varint(n)


def frame_span(serialized_span: bytes) -> bytes:
    """One ``spans`` entry of an ExportRequest; concatenated frames are a valid ExportRequest."""
    return frame_header(len(serialized_span)) + serialized_span


class WireError(ValueError):
    pass


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise WireError(f"truncated varint at byte {pos}")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError(f"varint too long at byte {pos}")


def split_export_request(data: bytes) -> Iterator[bytes]:
    """Yield each serialized Span of an ExportRequest, skipping unknown fields.

    Used by the server so one malformed span is rejected on its own instead of failing the batch.
    Raises WireError when the framing itself is broken (then nothing in the batch can be trusted).
    """
    pos = 0
    size = len(data)
    while pos < size:
        if data[pos] == 0x0A and pos + 2 < size:  # fast path: field 1 with a 1- or 2-byte length
            b1 = data[pos + 1]
            if b1 < 0x80:
                start, length = pos + 2, b1
            elif data[pos + 2] < 0x80:
                start, length = pos + 3, (b1 & 0x7F) | (data[pos + 2] << 7)
            else:
                start = -1
            if start >= 0:
                end = start + length
                if end > size:
                    raise WireError(f"field 1 claims {length} bytes but {size - start} remain")
                yield data[start:end]
                pos = end
                continue
        key, pos = _read_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > size:
                raise WireError(f"field {field} claims {length} bytes but {size - pos} remain")
            chunk = data[pos : pos + length]
            pos += length
            if field == 1:
                yield chunk
        elif wire_type == 0:
            _, pos = _read_varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire_type} for field {field}")
        if pos > size:
            raise WireError("truncated message")
