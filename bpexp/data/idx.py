"""Reading IDX files (the MNIST format), gzipped or not, validated as they are read.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

_TYPES = {0x08: np.dtype(np.uint8)}


class IDXError(ValueError):
    """A file that is not a valid IDX file of the expected kind."""


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's content, decompressed if it is gzipped (detected by its magic)."""
    return decompress(Path(path).read_bytes(), path)


def decompress(raw: bytes, path: str | os.PathLike = "<bytes>") -> bytes:
    """``raw`` (a file's bytes, read from ``path``) decompressed if it is gzipped."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def idx_header(array: np.ndarray) -> bytes:
    """The IDX header of an unsigned-byte ``array``: what precedes its bytes in its file."""
    return bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()


def parse_idx(data: bytes, ndim: int, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes holding an unsigned-byte array of ``ndim`` dimensions.

    Raises
    ------
    IDXError
        On a wrong magic number, type or rank, or a size that does not match
        the header (truncated or padded file); the message names ``name``.
    """
    if len(data) < 4:
        raise IDXError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    zero, code, rank = data[:2], data[2], data[3]
    expected_magic = f"0x{(0x08 << 8) | ndim:08x}"
    if zero != b"\0\0" or code not in _TYPES or rank != ndim:
        raise IDXError(
            f"{name}: bad IDX magic number 0x{data[:4].hex()}, expected {expected_magic} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{name}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    size = int(np.prod(shape)) * _TYPES[code].itemsize
    if len(data) - header != size:
        raise IDXError(
            f"{name}: header says {shape} ({size} data bytes) but the file holds "
            f"{len(data) - header}: truncated or corrupt"
        )
    return np.frombuffer(data, _TYPES[code], offset=header).reshape(shape)


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Read and validate an IDX file of ``ndim`` dimensions (gzipped or not)."""
    return parse_idx(read_bytes(path), ndim, str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8 array as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = idx_header(array) + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=1)
    path.write_bytes(data)
