"""The results store: every run, cycle, operation and tightening, in SQLite.

One file (``./runs/results.sqlite`` by default) in WAL mode. Each record is written in
its own transaction and is durable once the call returns:

* ``journal_mode=WAL``: a writer appends to the write-ahead log and never rewrites the
  database in place, so a process killed at any instant leaves either the whole
  transaction or none of it; readers (``cellctl runs``, notebooks) read while the cell
  writes.
* ``synchronous=FULL``: the log is fsync'ed at every commit. With ``NORMAL`` a process
  kill loses nothing either (the log is in the OS's hands when the commit returns), but
  a power cut or kernel crash may roll back the last commits; the spec asks that a crash
  never loses a committed record, and a cell commits a few records per second, so the
  one fsync per commit is cheap.

Tables: ``schema_version``, ``runs``, ``cycles`` (one product: its serial, verdict and
reason), ``operations`` (a pick, a place, a screw: kind, target, attempt, verdict) and
``tightenings`` (the torque-angle trace as two little-endian float32 blobs, with the
verdict, reason, and the key features). Times are wall-clock seconds since the Unix
epoch (UTC).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType

import numpy as np

from cells.tightening import Judgement, TighteningSpec
from planners.errors import InputError, RobotCellError
from sim.spindle import TighteningTrace

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "CycleRecord",
    "OperationRecord",
    "RecordsError",
    "ResultsStore",
    "RunRecord",
    "TighteningRecord",
    "format_time",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: Where the store lives unless told otherwise (relative to the working folder).
DEFAULT_STORE = Path("runs") / "results.sqlite"
#: Version of the schema this module writes.
SCHEMA_VERSION = 1
_VERDICTS = ("OK", "NOK", "ABORTED")
_RUN_STATUS = ("running", "finished", "stopped", "aborted", "failed")

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    cell TEXT NOT NULL,
    cell_file TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE cycles (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    serial TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    verdict TEXT,
    reason TEXT
);
CREATE INDEX cycles_run ON cycles(run_id);
CREATE INDEX cycles_serial ON cycles(serial);
CREATE TABLE operations (
    id INTEGER PRIMARY KEY,
    cycle_id INTEGER NOT NULL REFERENCES cycles(id),
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX operations_cycle ON operations(cycle_id);
CREATE TABLE tightenings (
    id INTEGER PRIMARY KEY,
    cycle_id INTEGER NOT NULL REFERENCES cycles(id),
    operation_id INTEGER REFERENCES operations(id),
    hole TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    time REAL NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    final_torque REAL NOT NULL,
    final_angle REAL NOT NULL,
    target_torque REAL,
    angle_min REAL,
    angle_max REAL,
    samples INTEGER NOT NULL,
    angle BLOB NOT NULL,
    torque BLOB NOT NULL
);
CREATE INDEX tightenings_cycle ON tightenings(cycle_id);
"""


class RecordsError(RobotCellError):
    """The results store cannot be opened or is used wrongly (unknown id, bad verdict)."""


@dataclass(frozen=True)
class RunRecord:
    """One run of a cell.

    Attributes:
        id: Run id.
        cell: Cell name.
        cell_file: Cell file the run loaded.
        started: Start time [s since the epoch].
        finished: End time [s since the epoch], or ``None`` while running (or killed).
        status: ``running``, ``finished``, ``stopped``, ``aborted`` or ``failed``.
        note: Free text.
        cycles: Cycles recorded.
        nok_cycles: Cycles whose verdict is not OK.
        tightenings: Tightenings recorded.
    """

    id: int
    cell: str
    cell_file: str
    started: float
    finished: float | None
    status: str
    note: str
    cycles: int = 0
    nok_cycles: int = 0
    tightenings: int = 0


@dataclass(frozen=True)
class CycleRecord:
    """One product through the cell (verdict ``None`` while unfinished)."""

    id: int
    run_id: int
    serial: str
    started: float
    finished: float | None
    verdict: str | None
    reason: str | None


@dataclass(frozen=True)
class OperationRecord:
    """One operation of a cycle: ``kind`` (pick, place, screw ...) on ``target``."""

    id: int
    cycle_id: int
    kind: str
    target: str
    attempt: int
    started: float
    finished: float
    verdict: str
    reason: str | None
    detail: str


@dataclass(frozen=True)
class TighteningRecord:
    """One tightening with its trace.

    Attributes:
        angle: (N,) [deg] and ``torque`` (N,) [N m] as stored (float32 precision).
    """

    id: int
    cycle_id: int
    operation_id: int | None
    hole: str
    attempt: int
    time: float
    verdict: str
    reason: str
    detail: str
    final_torque: float
    final_angle: float
    target_torque: float | None
    angle_min: float | None
    angle_max: float | None
    angle: np.ndarray
    torque: np.ndarray

    @property
    def trace(self) -> TighteningTrace:
        """The stored trace as a :class:`sim.spindle.TighteningTrace`."""
        return TighteningTrace.from_arrays(self.angle, self.torque)


def _blob(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def _array(blob: bytes) -> np.ndarray:
    out = np.frombuffer(blob, dtype="<f4").astype(np.float64)
    out.flags.writeable = False
    return out


def _check_text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{field}: expected a non-empty string, got {value!r}")
    return value


class ResultsStore:
    """The SQLite results store; a context manager.

    Args:
        path: The database file (``./runs/results.sqlite`` by default); its folder is
            created when ``create`` is true.
        create: Create the file when it does not exist; when false a missing file
            raises :class:`RecordsError`.

    Raises:
        RecordsError: the file cannot be opened or created, is not a results store, or
            has a newer schema.
    """

    def __init__(self, path: str | Path | None = None, create: bool = True) -> None:
        self.path = Path(path) if path is not None else DEFAULT_STORE
        if not create and not self.path.is_file():
            raise RecordsError(f"{self.path}: no results store there, expected an existing file")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise RecordsError(f"{self.path}: cannot open the results store ({exc})") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise RecordsError(f"{self.path}: not a usable results store ({exc})") from None
        except RecordsError:
            self._db.close()
            raise
        logger.info("results store %s open", self.path)

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (every record is already committed)."""
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
            ).fetchone()
            if not exists:
                others = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if others:
                    raise RecordsError(
                        f"{self.path}: an SQLite file without a schema_version table, "
                        "expected a results store"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                return
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] if row else None
            if version != SCHEMA_VERSION:
                raise RecordsError(
                    f"{self.path}: schema version {version}, expected {SCHEMA_VERSION}"
                )

    def _insert(self, sql: str, values: tuple[object, ...]) -> int:
        try:
            with self._transaction() as db:
                cur = db.execute(sql, values)
        except sqlite3.IntegrityError as exc:
            raise RecordsError(
                f"{self.path}: {exc} (an unknown run, cycle or operation id?)"
            ) from None
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def _update(self, sql: str, values: tuple[object, ...], what: str, key: int) -> None:
        with self._transaction() as db:
            if db.execute(sql, values).rowcount != 1:
                raise RecordsError(f"{self.path}: no {what} with id {key}")

    # -- writing --------------------------------------------------------------------------
    def start_run(self, cell: str, cell_file: str | Path = "", note: str = "") -> int:
        """Record the start of a run of ``cell``; returns the run id."""
        return self._insert(
            "INSERT INTO runs (cell, cell_file, started, status, note) VALUES (?, ?, ?, ?, ?)",
            (_check_text(cell, "cell"), str(cell_file), time.time(), "running", str(note)),
        )

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        """Record the end of run ``run_id`` with ``status`` (finished, stopped, aborted, failed)."""
        if status not in _RUN_STATUS[1:]:
            raise InputError(f"status: {status!r}, expected one of: {', '.join(_RUN_STATUS[1:])}")
        self._update(
            "UPDATE runs SET finished = ?, status = ? WHERE id = ?",
            (time.time(), status, run_id), "run", run_id,
        )  # fmt: skip

    def start_cycle(self, run_id: int, serial: str, at: float | None = None) -> int:
        """Record the start of a product cycle (at ``at`` [s since the epoch], now by
        default: a simulated cell passes its own clock); returns the cycle id."""
        return self._insert(
            "INSERT INTO cycles (run_id, serial, started) VALUES (?, ?, ?)",
            (run_id, _check_text(serial, "serial"), time.time() if at is None else float(at)),
        )

    def finish_cycle(
        self, cycle_id: int, verdict: str, reason: str | None = None, at: float | None = None
    ) -> None:
        """Record a cycle's verdict (``OK``, ``NOK`` or ``ABORTED``) and NOK reason."""
        if verdict not in _VERDICTS:
            raise InputError(f"verdict: {verdict!r}, expected one of: {', '.join(_VERDICTS)}")
        when = time.time() if at is None else float(at)
        self._update(
            "UPDATE cycles SET finished = ?, verdict = ?, reason = ? WHERE id = ?",
            (when, verdict, reason, cycle_id), "cycle", cycle_id,
        )  # fmt: skip

    def record_operation(
        self,
        cycle_id: int,
        kind: str,
        target: str,
        verdict: str,
        reason: str | None = None,
        *,
        started: float | None = None,
        finished: float | None = None,
        attempt: int = 1,
        detail: str = "",
    ) -> int:
        """Record one finished operation (pick, place, screw ...); returns its id.

        Args:
            cycle_id: The cycle it belongs to.
            kind: Operation kind, e.g. ``pick``, ``place``, ``screw``.
            target: What it acted on (a part or hole name).
            verdict: ``OK``, ``NOK`` or ``ABORTED``.
            reason: Why it is not OK.
            started: Start time [s since the epoch]; now by default.
            finished: End time [s since the epoch]; now by default.
            attempt: 1 for the first try, 2 for the first retry ...
            detail: Free text (the deciding value, a planner's reason).
        """
        if verdict not in _VERDICTS:
            raise InputError(f"verdict: {verdict!r}, expected one of: {', '.join(_VERDICTS)}")
        now = time.time()
        return self._insert(
            "INSERT INTO operations (cycle_id, kind, target, attempt, started, finished, "
            "verdict, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cycle_id, _check_text(kind, "kind"), _check_text(target, "target"), int(attempt),
             now if started is None else float(started), now if finished is None else
             float(finished), verdict, reason, str(detail)),
        )  # fmt: skip

    def record_tightening(
        self,
        cycle_id: int,
        hole: str,
        trace: TighteningTrace,
        judgement: Judgement,
        *,
        spec: TighteningSpec | None = None,
        attempt: int = 1,
        operation_id: int | None = None,
        at: float | None = None,
    ) -> int:
        """Record one tightening with its trace and verdict (at ``at`` [s since the epoch],
        now by default); returns its id."""
        if not isinstance(trace, TighteningTrace):
            raise InputError(f"trace: expected a TighteningTrace, got {type(trace).__name__}")
        values = (
            cycle_id, operation_id, _check_text(hole, "hole"), int(attempt),
            time.time() if at is None else float(at),
            "OK" if judgement.ok else "NOK", judgement.reason.value, judgement.detail,
            trace.final_torque, trace.final_angle,
            spec.target_torque if spec else None, spec.angle_min if spec else None,
            spec.angle_max if spec else None, int(trace.angle.size),
            _blob(trace.angle), _blob(trace.torque),
        )  # fmt: skip
        return self._insert(
            "INSERT INTO tightenings (cycle_id, operation_id, hole, attempt, time, verdict, "
            "reason, detail, final_torque, final_angle, target_torque, angle_min, angle_max, "
            "samples, angle, torque) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )

    # -- reading --------------------------------------------------------------------------
    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first, with their cycle and tightening counts."""
        sql = (
            "SELECT r.id, r.cell, r.cell_file, r.started, r.finished, r.status, r.note, "
            "(SELECT count(*) FROM cycles c WHERE c.run_id = r.id), "
            "(SELECT count(*) FROM cycles c WHERE c.run_id = r.id AND c.verdict != 'OK'), "
            "(SELECT count(*) FROM tightenings t JOIN cycles c ON t.cycle_id = c.id "
            " WHERE c.run_id = r.id) FROM runs r ORDER BY r.id DESC"
        )
        if limit is not None:
            if limit < 1:
                raise InputError(f"limit: expected >= 1, got {limit}")
            sql += f" LIMIT {int(limit)}"
        return [RunRecord(*row) for row in self._db.execute(sql)]

    def run(self, run_id: int) -> RunRecord:
        """Run ``run_id``; RecordsError when there is none."""
        for r in self.runs():
            if r.id == run_id:
                return r
        raise RecordsError(f"{self.path}: no run with id {run_id}")

    def cycles(self, run_id: int) -> list[CycleRecord]:
        """Cycles of a run, in order."""
        rows = self._db.execute(
            "SELECT id, run_id, serial, started, finished, verdict, reason FROM cycles "
            "WHERE run_id = ? ORDER BY id", (run_id,),
        )  # fmt: skip
        return [CycleRecord(*row) for row in rows]

    def operations(self, cycle_id: int) -> list[OperationRecord]:
        """Operations of a cycle, in order."""
        rows = self._db.execute(
            "SELECT id, cycle_id, kind, target, attempt, started, finished, verdict, reason, "
            "detail FROM operations WHERE cycle_id = ? ORDER BY id", (cycle_id,),
        )  # fmt: skip
        return [OperationRecord(*row) for row in rows]

    def tightenings(
        self,
        *,
        run_id: int | None = None,
        cycle_id: int | None = None,
        reason: str | None = None,
        limit: int | None = None,
    ) -> list[TighteningRecord]:
        """Tightenings, oldest first, filtered by run, cycle and reason value (``stripped``)."""
        where: list[str] = []
        args: list[object] = []
        if run_id is not None:
            where.append("t.cycle_id IN (SELECT id FROM cycles WHERE run_id = ?)")
            args.append(run_id)
        if cycle_id is not None:
            where.append("t.cycle_id = ?")
            args.append(cycle_id)
        if reason is not None:
            where.append("t.reason = ?")
            args.append(reason)
        sql = (
            "SELECT id, cycle_id, operation_id, hole, attempt, time, verdict, reason, detail, "
            "final_torque, final_angle, target_torque, angle_min, angle_max, angle, torque "
            "FROM tightenings t"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {max(int(limit), 1)}"
        out = []
        names = [f.name for f in fields(TighteningRecord)]
        for row in self._db.execute(sql, args):
            values = dict(zip(names, row, strict=True))
            values["angle"], values["torque"] = _array(row[-2]), _array(row[-1])
            out.append(TighteningRecord(**values))
        return out

    def db_mode(self) -> tuple[str, int]:
        """Journal mode and ``synchronous`` level in force (``("wal", 2)``: WAL, FULL)."""
        mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
        sync = self._db.execute("PRAGMA synchronous").fetchone()[0]
        return str(mode), int(sync)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def format_time(t: float | None) -> str:
    """A stored time as local ``YYYY-mm-dd HH:MM:SS`` (``-`` for none)."""
    if t is None or not math.isfinite(t):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
