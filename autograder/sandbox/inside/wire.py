"""Plain-data framing between the grader and its workers: JSON headers plus raw array bytes.

A frame is ``<4-byte big-endian header length><JSON header><blob 0><blob 1>...`` where the
header's ``"blobs"`` lists each blob's byte length. Arrays travel as a blob plus a small
descriptor ``{"dtype": "<f4", "shape": [2, 2], "blob": 0}``. Nothing is ever pickled, so
decoding a frame cannot run code; every size is checked against a limit before it is read.

This module must import nothing outside the standard library (numpy only inside the
functions that need it): the sandboxed worker loads it by file path.
"""
from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO, Callable

__all__ = ["WireError", "encode_frame", "parse_header", "parse_frame", "read_frame",
           "split_frames", "cap_text", "pack_array", "describe_array", "decode_array",
           "ARRAY_DTYPES", "MAX_TEXT"]

_LEN = struct.Struct(">I")
MAX_HEADER_BYTES = 1 << 20         # a header is a few hundred bytes; 1 MiB is plenty
MAX_FRAME_BYTES = 256 << 20        # hard ceiling for one frame, blobs included
MAX_TEXT = 600                     # characters of a message from student code
# Little-endian numpy type strings the grader accepts for arrays (no object dtypes).
ARRAY_DTYPES = {"<f2", "<f4", "<f8", "<i1", "<i2", "<i4", "<i8", "|u1", "|b1"}


class WireError(ValueError):
    """A frame or array descriptor that breaks the protocol (size, type or layout)."""


def encode_frame(header: dict[str, Any], blobs: list[bytes] = ()) -> bytes:
    """One frame: the header (``blobs`` sizes filled in) followed by the raw blobs."""
    header = dict(header, blobs=[len(b) for b in blobs])
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return b"".join([_LEN.pack(len(head)), head, *blobs])


def parse_header(head: bytes) -> dict[str, Any]:
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"frame header is not JSON: {exc}") from None
    except RecursionError:  # a child may nest brackets to crash the grader's parser
        raise WireError("frame header is nested too deeply") from None
    if not isinstance(header, dict):
        raise WireError("frame header is not a JSON object")
    sizes = header.get("blobs", [])
    if not isinstance(sizes, list) or not all(type(n) is int and n >= 0 for n in sizes):
        raise WireError("frame header has a malformed 'blobs' list")
    return header


class _Bytes:
    """``read(n)`` over bytes in memory, for ``split_frames``: EOFError when they run out."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise EOFError("the data ends inside a frame")
        self.pos += n
        return self.data[self.pos - n:self.pos]


def parse_frame(read: Callable[[int], bytes], max_bytes: int = MAX_FRAME_BYTES
                ) -> tuple[dict[str, Any], list[bytes]]:
    """The one frame parser: ``read(n)`` returns exactly ``n`` bytes or raises EOFError
    (a stream, a pipe with a deadline, bytes in memory). Sizes are checked before reading."""
    (n,) = _LEN.unpack(read(_LEN.size))
    if n > MAX_HEADER_BYTES:
        raise WireError(f"frame header of {n} bytes exceeds {MAX_HEADER_BYTES}")
    header = parse_header(read(n))
    sizes = header["blobs"]
    if sum(sizes) > max_bytes:
        raise WireError(f"frame of {sum(sizes)} bytes exceeds the {max_bytes}-byte limit")
    return header, [read(size) for size in sizes]


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError(f"stream ended {left} bytes short of a {n}-byte read")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO, max_bytes: int = MAX_FRAME_BYTES
               ) -> tuple[dict[str, Any], list[bytes]]:
    """Read one frame from a blocking binary stream; EOFError at a clean end of stream.
    Reads exactly the frame's bytes: a forked child may share the stream."""
    return parse_frame(lambda n: _read_exact(stream, n), max_bytes)


def split_frames(data: bytes) -> tuple[list[tuple[dict[str, Any], list[bytes]]], str | None]:
    """All complete frames in ``data``, plus why parsing stopped early (None if it did not)."""
    frames, source = [], _Bytes(data)
    while source.pos < len(data):
        try:
            frames.append(parse_frame(source.read))
        except EOFError:
            return frames, "the worker's report ends in a partial frame"
        except WireError as exc:
            return frames, str(exc)
    return frames, None


def cap_text(value: Any, limit: int = MAX_TEXT) -> str:
    """A string for a message, at most ``limit`` characters (then " ..."); anything else
    becomes str(value), and a hostile ``__str__`` cannot end the report."""
    if not isinstance(value, str):
        try:
            value = str(value)
        except BaseException:  # noqa: BLE001 - a student's __str__ may raise anything
            value = "<message could not be shown>"
    return value if len(value) <= limit else value[:limit] + " ..."


def pack_array(array, blobs: list[bytes]) -> dict[str, Any]:
    """Append a numpy array's bytes to ``blobs``; returns its descriptor (the one encoder).
    A C-contiguous array goes through ndarray's own methods only, which no code in the
    worker's child can replace (numpy's module functions it could)."""
    a = array
    if not a.flags.c_contiguous:
        import numpy as np

        a = np.ascontiguousarray(a)
    blobs.append(a.tobytes())
    return describe_array(a.dtype.str, list(a.shape), len(blobs) - 1)


def describe_array(dtype: str, shape: list[int], blob: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape), "blob": blob}


def decode_array(desc: Any, blobs: list[bytes], max_elements: int = 1 << 24):
    """Turn an array descriptor and its blob into a read-only numpy array, checking everything."""
    import numpy as np

    if not isinstance(desc, dict) or set(desc) != {"dtype", "shape", "blob"}:
        raise WireError("array descriptor must have exactly dtype, shape and blob")
    dtype, shape, index = desc["dtype"], desc["shape"], desc["blob"]
    if type(dtype) is not str or dtype not in ARRAY_DTYPES:
        raise WireError(f"array dtype {dtype!r} is not one of the accepted types")
    if (type(shape) is not list or len(shape) > 8
            or not all(type(n) is int and 0 <= n <= max_elements for n in shape)):
        raise WireError(f"array shape {shape!r} is not a short list of sizes")
    if type(index) is not int or not 0 <= index < len(blobs):
        raise WireError(f"array refers to data block {index!r}, which does not exist")
    count = 1
    for n in shape:
        count *= n
    if count > max_elements:
        raise WireError(f"array of {count} elements exceeds {max_elements}")
    np_dtype = np.dtype(dtype)
    blob = blobs[index]
    if len(blob) != count * np_dtype.itemsize:
        raise WireError(f"array data is {len(blob)} bytes; {dtype} {shape} needs "
                        f"{count * np_dtype.itemsize}")
    array = np.frombuffer(blob, dtype=np_dtype).reshape(shape)
    return array  # frombuffer over bytes is already read-only
