"""The simulator's column types: a (role, D-Bus path) key, a column (a constant or a per-second array), a
value, and a block of per-cell columns."""

from __future__ import annotations

from typing import Any

import numpy as np

Key = tuple[str, str]
Column = Any  # np.ndarray | int | float | str | None
Value = float | int | str | None
Block = tuple[tuple[Key, ...], np.ndarray]  # the keys of the rows of a (cells, n) matrix
