"""Physics replays of independent trajectories in worker processes.

A :class:`ReplayPool` keeps ``workers`` processes, each with its own :class:`World`
built once from the pool's :class:`WorldSpec`. A :class:`ReplayJob` says everything a
replay needs, including where bodies stand when it starts (``placed``: set after
:meth:`World.reset`), so jobs do not depend on each other or on which worker runs them:
a replay in a worker gives what :func:`sim.replay.replay` gives in the caller's world
after the same reset and poses.

Workers are started with ``spawn`` (never ``fork``: the parent may already run PyBullet
and numba threads), on first use. A worker that dies breaks the pool, and a worker that
does not answer in time (``timeout`` plus twice the trajectory's duration: a replay runs
about ten times faster than real time) is killed with the rest: the replays waiting on
them raise :class:`ReplayPoolError` (nothing passes silently, nothing hangs), and the next
use starts new workers.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import pickle
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planners.errors import InputError, RobotCellError
from planners.trajectory import Trajectory
from sim.replay import ReplaySettings, ToolEvent, replay
from sim.verdict import Verdict, Violation
from sim.world import World, WorldSpec

__all__ = ["ReplayJob", "ReplayPool", "ReplayPoolError"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class ReplayPoolError(RobotCellError):
    """A replay worker died (or could not start): the replays it had are not done."""


@dataclass(frozen=True)
class ReplayJob:
    """One replay: the arguments of :func:`sim.replay.replay` and the starting poses.

    Attributes:
        arm_name: The arm that moves.
        trajectory: Its motion.
        events: Grasps and releases.
        part_targets: Where placed parts must end.
        allowed_contacts: Pairs of body names that may touch.
        settings: Replay gains and tolerances.
        fastened: Parts the world holds where they are released.
        placed: Bodies moved (4x4 world poses) after the world's reset, before the replay.
    """

    arm_name: str
    trajectory: Trajectory
    events: tuple[ToolEvent, ...] = ()
    part_targets: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)
    allowed_contacts: tuple[tuple[str, str], ...] = ()
    settings: ReplaySettings | None = None
    fastened: tuple[str, ...] = ()
    placed: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)


def run_job(world: World, job: ReplayJob) -> Verdict:
    """Replay ``job`` in ``world`` from its reset state with the job's bodies placed."""
    world.reset()
    for name, T in job.placed.items():
        world.set_body_pose(name, T)
    return replay(
        world,
        job.arm_name,
        job.trajectory,
        events=job.events,
        part_targets=job.part_targets,
        allowed_contacts=job.allowed_contacts,
        settings=job.settings,
        fastened=job.fastened,
    )


def _picklable(spec: WorldSpec) -> WorldSpec:
    """``spec`` without what a world never uses and pickle cannot carry (the arms'
    roboticstoolbox models: a world loads an arm from its URDF text)."""
    arms = {n: dataclasses.replace(a, robot=None, _ets=None) for n, a in spec.arms.items()}
    return dataclasses.replace(spec, arms=arms)


# ---------------------------------------------------------------------- in a worker
_world: World | None = None

# A worker's first code (run by exec, so that nothing of ``sim`` is imported before it):
# PyBullet is imported with stderr closed, as ``cellctl`` does (its C code prints a build
# banner there), then the world is built from the pickled spec ``blob``.
_BOOT = """
import os
saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 2)
try:
    import pybullet
finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)
from sim.replay_pool import _start
_start(blob)
"""


def _start(blob: bytes) -> None:
    global _world
    _world = World(pickle.loads(blob))


def _work(job: ReplayJob) -> tuple[tuple[Violation, ...], dict[str, Any]]:
    assert _world is not None, "replay worker without a world"
    verdict = run_job(_world, job)
    return verdict.violations, dict(verdict.stats)  # a Verdict's stats proxy does not pickle


# ---------------------------------------------------------------------- in the caller
class ReplayPool:
    """``workers`` processes replaying :class:`ReplayJob` s in worlds built from ``spec``.

    Args:
        spec: The world every worker builds once.
        workers: Number of processes (>= 1).
        context: ``spawn`` or ``forkserver`` (``fork`` is refused).
        timeout: Longest wait for a job's verdict [s] beyond twice its trajectory's
            duration (the first job also waits for the workers to start: ~2-5 s).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, spec: WorldSpec, workers: int, context: str = "spawn", timeout: float = 60.0
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError(f"workers: got {workers!r}, expected an integer >= 1")
        if context not in ("spawn", "forkserver"):
            raise InputError(f"context: got {context!r}, expected 'spawn' or 'forkserver'")
        if not timeout > 0:
            raise InputError(f"timeout: got {timeout!r}, expected a positive number of seconds")
        self.spec = spec
        self.workers = workers
        self.timeout = float(timeout)
        self._waits: dict[Future[Any], float] = {}
        self._context = context
        self._shipped = pickle.dumps(_picklable(spec))
        self._executor: ProcessPoolExecutor | None = None

    def submit(self, job: ReplayJob) -> Future[Any]:
        """Start ``job`` on a free worker (the workers start on the first job)."""
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context(self._context),
                initializer=exec,
                initargs=(_BOOT, {"blob": self._shipped}),
            )
        try:
            future = self._executor.submit(_work, job)
        except BrokenProcessPool as exc:
            raise self._broken(exc) from None
        self._waits[future] = self.timeout + 2.0 * job.trajectory.duration
        return future

    def result(self, future: Future[Any]) -> Verdict:
        """The verdict of a submitted job (waits for it).

        Raises:
            ReplayPoolError: its worker died, could not start or did not answer in time.
        """
        wait = self._waits.pop(future, self.timeout)
        try:
            violations, stats = future.result(timeout=wait)
        except BrokenProcessPool as exc:
            raise self._broken(exc) from None
        except FutureTimeout:
            self._kill()
            logger.error("replay worker did not answer in %.1f s: workers killed", wait)
            raise ReplayPoolError(
                f"physics replay: no verdict from a worker process within {wait:.1f} s "
                "(workers killed); the programs are not validated"
            ) from None
        return Verdict(violations, stats=stats)

    def discard(self, future: Future[Any]) -> None:
        """Drop a job whose verdict is no longer wanted (cancelled if it has not started)."""
        future.cancel()
        self._waits.pop(future, None)

    def replay(self, jobs: list[ReplayJob]) -> list[Verdict]:
        """The verdicts of ``jobs``, in their order."""
        futures = [self.submit(job) for job in jobs]
        return [self.result(f) for f in futures]

    def _broken(self, exc: BaseException) -> ReplayPoolError:
        self.close()  # the next job starts new workers
        logger.error("replay worker died: %s", exc)
        return ReplayPoolError(
            f"physics replay: a worker process died or could not start ({exc}); "
            "the programs are not validated"
        )

    def _kill(self) -> None:
        """Kill the workers now (a hung one would make :meth:`close` wait forever)."""
        executor, self._executor = self._executor, None
        self._waits.clear()
        if executor is None:
            return
        # ProcessPoolExecutor offers no terminate before Python 3.14: its process table.
        processes = list(getattr(executor, "_processes", {}).values())
        for process in processes:
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5.0)

    def close(self) -> None:
        """Stop the workers (waits for running jobs; pending ones are dropped)."""
        self._waits.clear()
        if self._executor is not None:
            executor, self._executor = self._executor, None
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ReplayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
