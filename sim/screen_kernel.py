"""Compiled clearance bounds of the sphere model, per world body, for many samples.

The sweep needs, at every sample, a lower bound on the distance between each world body
and what moves (the arm's links, a held part). The sphere model gives it: a link is
covered by spheres, and the distance from a sphere to a primitive (box, sphere,
cylinder, capsule) is exact. The spheres are carried from the zero configuration by the
samples' joint products (:mod:`planners.poe`), and only where needed: a bounding sphere
of each link's spheres and of each body's primitives skips the pairs that are far apart,
so the cost follows what is near.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.scene import Box, Capsule, Cylinder, Obstacle, Sphere

__all__ = ["BodyPrimitives", "body_bounds", "chunks", "compile_bodies", "self_flags"]

_SPHERE, _BOX, _CYLINDER, _CAPSULE = 0, 1, 2, 3


class BodyPrimitives:
    """The primitives of world bodies, grouped by body, as the kernel's arrays.

    Attributes:
        kind: (M,) primitive type.
        inv: (M, 3, 4) world-to-primitive transforms.
        param: (M, 3) radius / half extents / (radius, half length).
        start: (B + 1,) each body's rows.
        ball: (B, 4) a bounding sphere of each body ``x y z r`` (r = -1: no primitive).
        pball: (M, 4) a bounding sphere of each primitive.
    """

    def __init__(self, bodies: Sequence[Sequence[Obstacle]]) -> None:
        rows = [o for shapes in bodies for o in shapes]
        M = len(rows)
        self.kind = np.zeros(M, np.int64)
        self.inv = np.zeros((M, 3, 4))
        self.param = np.zeros((M, 3))
        centre = np.zeros((M, 3))
        reach = np.zeros(M)
        for m, o in enumerate(rows):
            T = np.asarray(o.pose, dtype=np.float64)
            self.inv[m] = np.linalg.inv(T)[:3]
            centre[m] = T[:3, 3]
            if isinstance(o, Sphere):
                self.kind[m], self.param[m, 0], reach[m] = _SPHERE, o.radius, o.radius
            elif isinstance(o, Box):
                self.kind[m], self.param[m] = _BOX, o.half_extents
                reach[m] = float(np.linalg.norm(o.half_extents))
            elif isinstance(o, Cylinder):
                self.kind[m] = _CYLINDER
                self.param[m, :2] = o.radius, o.length / 2
                reach[m] = float(np.hypot(o.radius, o.length / 2))
            elif isinstance(o, Capsule):
                self.kind[m] = _CAPSULE
                self.param[m, :2] = o.radius, o.length / 2
                reach[m] = o.radius + o.length / 2
            else:  # pragma: no cover - Obstacle is a closed union
                raise TypeError(f"unsupported obstacle {o!r}")
        self.pball = np.c_[centre, reach * (1 + 1e-9) + 1e-12]
        self.start = np.cumsum([0] + [len(s) for s in bodies]).astype(np.int64)
        self.ball = np.full((len(bodies), 4), -1.0)
        for b in range(len(bodies)):
            lo, hi = self.start[b], self.start[b + 1]
            if hi > lo:
                c = (centre[lo:hi].min(axis=0) + centre[lo:hi].max(axis=0)) / 2
                r = np.max(np.linalg.norm(centre[lo:hi] - c, axis=1) + reach[lo:hi])
                self.ball[b, :3] = c
                self.ball[b, 3] = r * (1 + 1e-9) + 1e-12


def compile_bodies(bodies: Sequence[Sequence[Obstacle]]) -> BodyPrimitives:
    """The kernel's arrays for the primitives of each body (a body may have none)."""
    return BodyPrimitives(bodies)


@nb.njit(cache=True, inline="always")
def _signed_distance(
    x: float, y: float, z: float, kind: int, inv: NDArray[np.float64],
    param: NDArray[np.float64], m: int,
) -> float:  # fmt: skip
    """Signed distance of a point from primitive ``m`` (negative inside)."""
    px = inv[m, 0, 0] * x + inv[m, 0, 1] * y + inv[m, 0, 2] * z + inv[m, 0, 3]
    py = inv[m, 1, 0] * x + inv[m, 1, 1] * y + inv[m, 1, 2] * z + inv[m, 1, 3]
    pz = inv[m, 2, 0] * x + inv[m, 2, 1] * y + inv[m, 2, 2] * z + inv[m, 2, 3]
    if kind == _SPHERE:
        return np.sqrt(px * px + py * py + pz * pz) - param[m, 0]
    if kind == _BOX:
        qx = abs(px) - param[m, 0]
        qy = abs(py) - param[m, 1]
        qz = abs(pz) - param[m, 2]
        ox = max(qx, 0.0)
        oy = max(qy, 0.0)
        oz = max(qz, 0.0)
        return np.sqrt(ox * ox + oy * oy + oz * oz) + min(max(qx, qy, qz), 0.0)
    if kind == _CYLINDER:
        dr = np.sqrt(px * px + py * py) - param[m, 0]
        dz = abs(pz) - param[m, 1]
        a = max(dr, 0.0)
        b = max(dz, 0.0)
        return np.sqrt(a * a + b * b) + min(max(dr, dz), 0.0)
    # capsule: distance from the segment on z, minus the radius
    cz = min(max(pz, -param[m, 1]), param[m, 1])
    dz = pz - cz
    return np.sqrt(px * px + py * py + dz * dz) - param[m, 0]


def chunks(
    X0: NDArray[np.float64], gstart: NDArray[np.int64], size: int = 4
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Each group's spheres in compact chunks of at most ``size``, with a bounding sphere each.

    A group is halved along its longest extent until the pieces are small enough.

    Returns:
        The order of the rows of ``X0`` that makes each chunk contiguous (within its group),
        (C + 1,) the chunks' rows in that order, (C, 4) their bounding spheres at zero, and
        (G + 1,) each group's chunks.
    """
    order: list[int] = []
    starts: list[int] = []
    first = [0]

    def split(rows: NDArray[np.int64]) -> None:
        if len(rows) <= size:
            starts.append(len(order))
            order.extend(rows.tolist())
            return
        C = X0[rows, :3]
        axis = int(np.argmax(C.max(axis=0) - C.min(axis=0)))
        ranked = rows[np.argsort(C[:, axis], kind="stable")]
        half = len(ranked) // 2
        split(ranked[:half])
        split(ranked[half:])

    for g in range(gstart.size - 1):
        rows = np.arange(gstart[g], gstart[g + 1])
        if rows.size:
            split(rows)
        first.append(len(starts))
    cstart = np.array([*starts, len(order)], np.int64)
    X = X0[np.array(order, np.int64)]
    cball = np.zeros((len(starts), 4))
    for c in range(len(starts)):
        C = X[cstart[c] : cstart[c + 1], :3]
        mid = (C.min(axis=0) + C.max(axis=0)) / 2
        cball[c, :3] = mid
        r = np.linalg.norm(C - mid, axis=1) + X[cstart[c] : cstart[c + 1], 3]
        cball[c, 3] = r.max() * (1 + 1e-9) + 1e-12
    return np.array(order, np.int64), cstart, cball, np.array(first, np.int64)


@nb.njit(cache=True, inline="always")
def _carry(
    P: NDArray[np.float64], i: int, k: int, V: NDArray[np.float64], v: int
) -> tuple[float, float, float]:
    """Point ``V[v, :3]`` at zero, carried by joint product ``P[i, k]`` (-1: fixed)."""
    x = V[v, 0]
    y = V[v, 1]
    z = V[v, 2]
    if k < 0:
        return x, y, z
    return (
        P[i, k, 0, 0] * x + P[i, k, 0, 1] * y + P[i, k, 0, 2] * z + P[i, k, 0, 3],
        P[i, k, 1, 0] * x + P[i, k, 1, 1] * y + P[i, k, 1, 2] * z + P[i, k, 1, 3],
        P[i, k, 2, 0] * x + P[i, k, 2, 1] * y + P[i, k, 2, 2] * z + P[i, k, 2, 3],
    )


@nb.njit(cache=True, inline="always")
def _gap(x: float, y: float, z: float, r: float, balls: NDArray[np.float64], b: int) -> float:
    """Gap between a sphere and bounding sphere ``balls[b]`` (negative: they overlap)."""
    dx = x - balls[b, 0]
    dy = y - balls[b, 1]
    dz = z - balls[b, 2]
    return np.sqrt(dx * dx + dy * dy + dz * dz) - r - balls[b, 3]


@nb.njit(cache=True, inline="always")
def _box_box(
    P: NDArray[np.float64], i: int, k: int, hT0: NDArray[np.float64], hhalf: NDArray[np.float64],
    h: int, inv: NDArray[np.float64], param: NDArray[np.float64], m: int,
) -> float:  # fmt: skip
    """Lower bound on the signed distance of held box ``h`` from box primitive ``m``.

    The held box is carried by ``P[i, k]`` from its zero-configuration pose ``hT0[h]``;
    in the primitive's frame it lies in an axis-aligned box (exact when the two are
    aligned), whose signed distance from the primitive is exact: the gaps along the axes,
    or when they overlap on every axis the smallest overlap.
    """
    # R, c: the held box's rotation and centre in the primitive's frame
    W = np.empty((3, 4))
    for r in range(3):
        for col in range(4):
            W[r, col] = (
                P[i, k, r, 0] * hT0[h, 0, col]
                + P[i, k, r, 1] * hT0[h, 1, col]
                + P[i, k, r, 2] * hT0[h, 2, col]
            )
        W[r, 3] += P[i, k, r, 3]
    outside = 0.0
    deepest = -np.inf
    for r in range(3):
        c = inv[m, r, 0] * W[0, 3] + inv[m, r, 1] * W[1, 3] + inv[m, r, 2] * W[2, 3] + inv[m, r, 3]
        e = 0.0
        for col in range(3):
            a = inv[m, r, 0] * W[0, col] + inv[m, r, 1] * W[1, col] + inv[m, r, 2] * W[2, col]
            e += abs(a) * hhalf[h, col]
        gap = abs(c) - e - param[m, r]
        if gap > 0.0:
            outside += gap * gap
        deepest = max(deepest, gap)
    return np.sqrt(outside) if outside > 0.0 else deepest


@nb.njit(cache=True)
def _group_body_gap(
    P: NDArray[np.float64], i: int, g: int, b: int, k: int, cx: float, cy: float, cz: float,
    X0: NDArray[np.float64], gball: NDArray[np.float64], gchunk: NDArray[np.int64],
    cstart: NDArray[np.int64], cball: NDArray[np.float64], hstart: NDArray[np.int64],
    hT0: NDArray[np.float64], hhalf: NDArray[np.float64], kind: NDArray[np.int64],
    inv: NDArray[np.float64], param: NDArray[np.float64], pball: NDArray[np.float64],
    bstart: NDArray[np.int64], ball: NDArray[np.float64], cap: float,
) -> float:  # fmt: skip
    """Smallest gap between group g and body b's primitives at sample i (<= cap).

    A group with boxes (a held part made of boxes, ``hstart``) is measured against a
    body's boxes as boxes, against its other primitives by its spheres.
    """
    best = min(cap, _gap(cx, cy, cz, gball[g, 3], ball, b))
    if best >= cap:
        return best  # the whole group is this far
    best = cap
    boxes = hstart[g + 1] > hstart[g]
    for c in range(gchunk[g], gchunk[g + 1]):
        hx, hy, hz = _carry(P, i, k, cball, c)
        rc = cball[c, 3]
        if _gap(hx, hy, hz, rc, ball, b) >= best:
            continue
        for m in range(bstart[b], bstart[b + 1]):
            if boxes and kind[m] == _BOX:
                continue  # measured as boxes below
            if _gap(hx, hy, hz, rc, pball, m) >= best:
                continue
            for s in range(cstart[c], cstart[c + 1]):
                x, y, z = _carry(P, i, k, X0, s)
                d = _signed_distance(x, y, z, kind[m], inv, param, m) - X0[s, 3]
                if d < best:
                    best = d
    if boxes:
        for m in range(bstart[b], bstart[b + 1]):
            if kind[m] != _BOX or _gap(cx, cy, cz, gball[g, 3], pball, m) >= best:
                continue
            for h in range(hstart[g], hstart[g + 1]):
                d = _box_box(P, i, k, hT0, hhalf, h, inv, param, m)
                if d < best:
                    best = d
    return best


@nb.njit(cache=True)
def body_bounds(
    P: NDArray[np.float64],
    Q: NDArray[np.float64],
    revolute: NDArray[np.int64],
    X0: NDArray[np.float64],
    gjoint: NDArray[np.int64],
    gball: NDArray[np.float64],
    gmover: NDArray[np.int64],
    gchunk: NDArray[np.int64],
    cstart: NDArray[np.int64],
    cball: NDArray[np.float64],
    hstart: NDArray[np.int64],
    hT0: NDArray[np.float64],
    hhalf: NDArray[np.float64],
    kind: NDArray[np.int64],
    inv: NDArray[np.float64],
    param: NDArray[np.float64],
    pball: NDArray[np.float64],
    bstart: NDArray[np.int64],
    ball: NDArray[np.float64],
    allowed: NDArray[np.bool_],
    cap: float,
    reach: float,
    C: NDArray[np.float64],
    travel: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Per sample, a lower bound on each body's distance to the movers' spheres.

    A sphere's distance from a primitive is exact; bounding spheres of each group, each
    group's chunks of spheres, each body and each primitive skip what is far. Between
    samples a group moves by at most its centre's step plus its radius times the turn
    of its frame (at most the sum of the joint steps before it), so a gap measured at
    one sample bounds the following ones until that motion uses it up: the gap is
    measured (up to ``reach``) only where the bound falls below ``cap``.

    Args:
        P: (N, J, 3, 4) joint products of the samples (:mod:`planners.poe`).
        Q: (N, J) joint positions of the samples.
        revolute: (J,) 1 for a turning joint.
        X0: (S, 4) spheres ``x y z r`` at the zero configuration.
        gjoint: (G,) the joint whose product carries each group (-1: none).
        gball: (G, 4) a bounding sphere of each group at zero.
        gmover: (G,) the mover each group belongs to (the arm, a held part).
        gchunk, cstart, cball: each group's chunks of spheres (:func:`chunks`).
        hstart, hT0, hhalf: (G + 1,) each group's boxes (a held part made of boxes), their
            (H, 3, 4) poses at zero and (H, 3) half extents; measured as boxes against
            the bodies' boxes (tighter than spheres), by their spheres otherwise.
        kind, inv, param, pball, bstart, ball: the bodies (:class:`BodyPrimitives`).
        allowed: (movers, B) True where a mover and a body are never checked.
        cap: Bounds above this are reported as ``cap`` [m].
        reach: Gaps are measured up to this [m] (>= ``cap``; farther: fewer measures).
        C, travel: Work space, at least (N, G, 3) and (G, N).

    Returns:
        (N, movers, B) bounds [m] per mover and body: the sphere model's exact distance
        (boxes: the exact distance of a box enclosing the held box) where it is below
        ``cap``.
    """
    N, J = Q.shape
    G = gjoint.size
    B = bstart.size - 1
    lb = np.full((N, gmover.max() + 1 if G else 1, B), cap)
    # C: each group's bounding-sphere centre at each sample
    for i in range(N):
        for g in range(G):
            C[i, g, 0], C[i, g, 1], C[i, g, 2] = _carry(P, i, gjoint[g], gball, g)
    # travel[g, i]: how far group g can have moved from sample 0 to sample i (summed steps:
    # its centre's step plus its radius times the turn of its frame, at most the sum of
    # the turning joints' steps before it)
    for g in range(G):
        travel[g, 0] = 0.0
    turn = np.zeros(J)
    for i in range(N - 1):
        acc = 0.0
        for j in range(J):
            if revolute[j] == 1:
                acc += abs(Q[i + 1, j] - Q[i, j])
            turn[j] = acc
        for g in range(G):
            d0 = C[i + 1, g, 0] - C[i, g, 0]
            d1 = C[i + 1, g, 1] - C[i, g, 1]
            d2 = C[i + 1, g, 2] - C[i, g, 2]
            step = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
            if gjoint[g] >= 0:
                step += gball[g, 3] * turn[gjoint[g]]
            travel[g, i + 1] = travel[g, i] + step
    for g in range(G):
        mover = gmover[g]
        k = gjoint[g]
        for b in range(B):
            if allowed[mover, b] or ball[b, 3] < 0:
                continue
            i = 0
            while i < N:
                gap = _group_body_gap(
                    P, i, g, b, k, C[i, g, 0], C[i, g, 1], C[i, g, 2], X0, gball, gchunk,
                    cstart, cball, hstart, hT0, hhalf, kind, inv, param, pball, bstart, ball,
                    reach,
                )  # fmt: skip
                if gap < lb[i, mover, b]:
                    lb[i, mover, b] = gap
                # the gap proves the samples whose travel since i stays below gap - cap
                if gap - cap > 0.0:
                    i = max(i + 1, np.searchsorted(travel[g, :N], travel[g, i] + gap - cap, "left"))
                else:
                    i += 1
    return lb


@nb.njit(cache=True)
def _group_gap(
    P: NDArray[np.float64],
    i: int,
    X0: NDArray[np.float64],
    gjoint: NDArray[np.int64],
    gball: NDArray[np.float64],
    gchunk: NDArray[np.int64],
    cstart: NDArray[np.int64],
    cball: NDArray[np.float64],
    g: int,
    h: int,
    cap: float,
    hc: NDArray[np.float64],
) -> float:
    """Smallest gap between the spheres of groups g and h at sample i (at most ``cap``).

    ``hc`` is work space for h's chunk centres (one row per chunk).
    """
    kg = gjoint[g]
    kh = gjoint[h]
    gx, gy, gz = _carry(P, i, kg, gball, g)
    hx, hy, hz = _carry(P, i, kh, gball, h)
    d = np.sqrt((gx - hx) ** 2 + (gy - hy) ** 2 + (gz - hz) ** 2)
    if d - gball[g, 3] - gball[h, 3] >= cap:
        return cap
    h0 = gchunk[h]
    for e in range(h0, gchunk[h + 1]):
        hc[e - h0, 0], hc[e - h0, 1], hc[e - h0, 2] = _carry(P, i, kh, cball, e)
    best = cap
    for c in range(gchunk[g], gchunk[g + 1]):
        cx, cy, cz = _carry(P, i, kg, cball, c)
        rc = cball[c, 3]
        if np.sqrt((cx - hx) ** 2 + (cy - hy) ** 2 + (cz - hz) ** 2) - rc - gball[h, 3] >= best:
            continue
        for e in range(h0, gchunk[h + 1]):
            ex = hc[e - h0, 0]
            ey = hc[e - h0, 1]
            ez = hc[e - h0, 2]
            gap_c = np.sqrt((cx - ex) ** 2 + (cy - ey) ** 2 + (cz - ez) ** 2) - rc - cball[e, 3]
            if gap_c >= best:
                continue
            for s in range(cstart[c], cstart[c + 1]):
                ax, ay, az = _carry(P, i, kg, X0, s)
                for u in range(cstart[e], cstart[e + 1]):
                    bx, by, bz = _carry(P, i, kh, X0, u)
                    gap = np.sqrt((ax - bx) ** 2 + (ay - by) ** 2 + (az - bz) ** 2)
                    gap -= X0[s, 3] + X0[u, 3]
                    if gap < best:
                        best = gap
    return best


@nb.njit(cache=True)
def self_flags(
    P: NDArray[np.float64],
    Q: NDArray[np.float64],
    X0: NDArray[np.float64],
    gjoint: NDArray[np.int64],
    gball: NDArray[np.float64],
    gchunk: NDArray[np.int64],
    cstart: NDArray[np.int64],
    cball: NDArray[np.float64],
    pairs: NDArray[np.int64],
    rates: NDArray[np.float64],
    limit: float,
    flagged: NDArray[np.bool_],
) -> int:
    """Flag the samples where a pair of groups may come closer than ``limit``.

    The spheres' gap at a sample bounds the exact distance of the links from below; with
    the pair's ``rates`` (:class:`sim.pair_screen.PairScreen`) it proves later samples
    clear while ``rates . |q - q_k|`` stays below ``gap - limit``. Where the gap itself
    is below ``limit`` the sample is flagged (for an exact query) and the next one tried.

    Args:
        P: (N, J, 3, 4) joint products; Q: (N, J) positions of the samples.
        X0, gjoint, gball, gchunk, cstart, cball: the groups' spheres and chunks (as
            :func:`body_bounds`).
        pairs: (K, 2) groups to check against each other.
        rates: (K, J) bound on how fast each pair's exact distance changes [m/rad].
        limit: Gap [m] below which a sample is flagged.
        flagged: (N,) set True where flagged.

    Returns:
        The number of gaps computed.
    """
    N, J = Q.shape
    most = 1
    for g in range(gjoint.size):
        most = max(most, gchunk[g + 1] - gchunk[g])
    hc = np.empty((most, 3))
    count = 0
    for p in range(pairs.shape[0]):
        g = pairs[p, 0]
        h = pairs[p, 1]
        k = 0
        while k < N:
            count += 1
            gap = _group_gap(P, k, X0, gjoint, gball, gchunk, cstart, cball, g, h, 0.25, hc)
            if gap < limit:
                flagged[k] = True
                k += 1
                continue
            budget = gap - limit
            i = k + 1
            while i < N:
                w = 0.0
                for j in range(J):
                    w += rates[p, j] * abs(Q[i, j] - Q[k, j])
                if w >= budget:
                    break
                i += 1
            k = i
    return count
