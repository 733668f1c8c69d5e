"""Node and edge property rows as plain Python values: the attributes of an exported graph
(:mod:`circuitatlas.export`) and of the report's interactive graph (:mod:`circuitatlas.report`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pandas as pd


def plain_value(value: Any) -> Any:
    """A frame cell as a plain Python value (numpy scalars unwrapped); None when missing."""
    if isinstance(value, list | tuple | dict):
        return value
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def plain_records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Each row of ``frame`` as a dict of its non-null cells, as plain Python values."""
    columns = list(frame.columns)
    for row in frame.astype(object).itertuples(index=False, name=None):
        plain = (plain_value(v) for v in row)
        yield {c: v for c, v in zip(columns, plain, strict=True) if v is not None}
