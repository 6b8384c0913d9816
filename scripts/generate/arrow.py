"""Fast Arrow builders: ids rendered straight into string buffers, dictionaries, timestamps."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from scripts.ground_truth import DATA_START

_EPOCH_SECONDS = int((np.datetime64(DATA_START, "s") - np.datetime64(0, "s")).astype(np.int64))

_DIGITS = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)


def format_ids(
    prefix: str, numbers: np.ndarray, width: int, null: np.ndarray | None = None
) -> pa.Array:
    """Render ``prefix`` + zero-padded ``numbers`` straight into an Arrow string buffer.

    When the rendered id is a whole number of 4-byte words (and the prefix shorter than one),
    each word is one gather from a lookup table, which is what makes 50M ids cheap.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    n = len(numbers)
    if n and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(f"ids with prefix {prefix!r} do not fit in {width} digits")
    head = prefix.encode()
    line = len(head) + width
    if line % 4 == 0 and len(head) < 4:
        words = np.empty((n, line // 4), dtype=np.uint32)
        rest = numbers
        for column in range(line // 4 - 1, 0, -1):
            rest, low = np.divmod(rest, 10_000)
            words[:, column] = _DIGIT_WORDS[low]
        lead = 4 - len(head)
        first = np.empty((10**lead, 4), dtype=np.uint8)
        first[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
        first[:, len(head) :] = _DIGITS[: 10**lead, 4 - lead :]
        words[:, 0] = first.view(np.uint32).ravel()[rest]
        data = words.view(np.uint8)
    else:
        data = np.empty((n, line), dtype=np.uint8)
        data[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
        rest = numbers.copy()
        column = line
        while column > len(head):
            step = min(4, column - len(head))
            data[:, column - step : column] = _DIGITS[rest % 10_000, 4 - step :]
            rest //= 10_000
            column -= step
    offsets = np.arange(0, (n + 1) * line, line, dtype=np.int32)
    validity, null_count = None, 0
    if null is not None and null.any():
        validity = pa.py_buffer(np.packbits(~null, bitorder="little"))
        null_count = int(null.sum())
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), validity, null_count
    )


_DIGIT_WORDS = _DIGITS.view(np.uint32).ravel()


def dictionary_array(
    vocabulary: list[str] | tuple[str, ...] | pa.Array,
    codes: np.ndarray,
    null: np.ndarray | None = None,
) -> pa.DictionaryArray:
    values = vocabulary if isinstance(vocabulary, pa.Array) else pa.array(list(vocabulary))
    indices = pa.array(np.asarray(codes).astype(np.int32), mask=null)
    return pa.DictionaryArray.from_arrays(indices, values)


def timestamp_array(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    micros = (np.asarray(seconds, dtype=np.int64) + _EPOCH_SECONDS) * 1_000_000
    return pa.array(micros.astype("datetime64[us]"), type=pa.timestamp("us"), mask=null)
