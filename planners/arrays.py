"""Small helpers for the read-only float arrays that the project's values hold."""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.errors import InputError

__all__ = ["as_matrix4", "as_vector", "frozen"]


def frozen(values: npt.ArrayLike, dtype: npt.DTypeLike = np.float64) -> NDArray:
    """A read-only copy of ``values`` as a contiguous array."""
    out = np.array(values, dtype=dtype, copy=True, order="C")
    out.flags.writeable = False
    return out


def as_vector(values: npt.ArrayLike, n: int, field: str) -> NDArray[np.float64]:
    """``values`` as a finite float vector of length ``n``; InputError naming ``field``."""
    try:
        out = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{field}: expected {n} numbers, got {values!r}") from exc
    if out.shape != (n,):
        raise InputError(f"{field}: expected {n} numbers, got shape {np.shape(values)}")
    if not np.all(np.isfinite(out)):
        raise InputError(f"{field}: every value must be finite, got {out.tolist()}")
    return out


def as_matrix4(T: object, field: str) -> NDArray[np.float64]:
    """A homogeneous transform (spatialmath SE3 or 4x4 array) as a checked 4x4 array."""
    A = getattr(T, "A", T)
    try:
        M = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{field}: expected an SE3 or a 4x4 array") from exc
    if M.shape != (4, 4):
        raise InputError(f"{field}: expected an SE3 or a 4x4 array, got shape {M.shape}")
    problem = _pose_problem(M)
    if problem == 1:
        raise InputError(f"{field}: every value must be finite")
    if problem == 2:
        raise InputError(f"{field}: the rotation part is not a proper rotation matrix")
    if problem == 3:
        raise InputError(f"{field}: the last row must be 0 0 0 1")
    return M


@nb.njit(cache=True)
def _pose_problem(M: NDArray[np.float64]) -> int:
    """0 for a valid rigid transform; 1 not finite, 2 not a rotation, 3 bad last row."""
    for i in range(4):
        for j in range(4):
            if not np.isfinite(M[i, j]):
                return 1
    for i in range(3):
        for j in range(3):
            dot = M[i, 0] * M[j, 0] + M[i, 1] * M[j, 1] + M[i, 2] * M[j, 2]
            if abs(dot - (1.0 if i == j else 0.0)) > 1e-6:
                return 2
    det = (
        M[0, 0] * (M[1, 1] * M[2, 2] - M[1, 2] * M[2, 1])
        - M[0, 1] * (M[1, 0] * M[2, 2] - M[1, 2] * M[2, 0])
        + M[0, 2] * (M[1, 0] * M[2, 1] - M[1, 1] * M[2, 0])
    )
    if det < 0:
        return 2
    if M[3, 0] != 0.0 or M[3, 1] != 0.0 or M[3, 2] != 0.0 or M[3, 3] != 1.0:
        return 3
    return 0
