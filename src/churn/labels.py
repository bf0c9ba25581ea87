"""How a target value is spelt for comparison: a leaf module, shared by training (which encodes
the target) and monitoring (which reads a batch's labels) without the training side's imports."""

from __future__ import annotations

import numpy as np


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
