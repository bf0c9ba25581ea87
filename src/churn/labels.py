"""How a target value is spelt for comparison, and a column of labels read as 1/0: a leaf module,
shared by training (which encodes the target), evaluate and monitoring (which read a batch's
labels chunk by chunk) without the training side's imports."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def label_key(value: object) -> str:
    """Comparable spelling of a target value: "Yes", "yes" and " YES " match, as do 1, "1" and "1.0"."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text.casefold()
    return str(int(number)) if number.is_integer() else text


def positive_flags(column: pa.ChunkedArray | pa.Array, positive: str) -> tuple[np.ndarray, set[str]]:
    """1 where the label is the `positive` key (`label_key`'s spelling), 0 where another value,
    NaN where missing; and the distinct label keys the column holds."""
    encoded = pc.dictionary_encode(pc.cast(column, pa.string()))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    keys = [label_key(v) for v in encoded.dictionary.to_pylist()]
    known = np.asarray([key == positive for key in keys] + [False], dtype="float64")
    indices = encoded.indices.fill_null(len(known) - 1).to_numpy(zero_copy_only=False)
    flags = known[indices]
    flags[encoded.indices.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return flags, set(keys)
