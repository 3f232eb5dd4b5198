"""Finding and resolving the project's URDF models.

PyBullet and roboticstoolbox each resolve ``package://`` and relative mesh paths their
own way; this module resolves them once, the same way for both: every mesh filename in
the text handed to either library is an absolute path.

* ``package://NAME/rest`` resolves to ``<urdf root>/NAME/rest``.
* A relative path resolves against the folder of the URDF file that names it.
* ``file://`` and absolute paths are kept.

The URDF root is the repository's ``urdf/`` folder, or ``$ROBOTCELL_URDF`` when set.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from planners.errors import ModelError, UnknownNameError

__all__ = [
    "model_dir",
    "model_names",
    "parse_urdf",
    "resolve_urdf",
    "resolved_urdf_file",
    "urdf_root",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def urdf_root() -> Path:
    """The folder that holds one sub-folder per shipped model."""
    env = os.environ.get("ROBOTCELL_URDF")
    root = Path(env) if env else Path(__file__).resolve().parent.parent / "urdf"
    if not root.is_dir():
        raise ModelError(f"URDF root {root} is not a folder (set ROBOTCELL_URDF to override)")
    return root


def model_names() -> list[str]:
    """Names of the model folders under the URDF root, sorted."""
    return sorted(
        p.name for p in urdf_root().iterdir() if p.is_dir() and not p.name.startswith(".")
    )


def model_dir(name: str) -> Path:
    """The folder of model ``name``; raises UnknownNameError listing the models."""
    path = urdf_root() / name
    if not path.is_dir():
        raise UnknownNameError("model", name, model_names())
    return path


def _resolve_filename(filename: str, base: Path, root: Path) -> str:
    if filename.startswith("package://"):
        rest = filename[len("package://") :]
        path = root / rest
    elif filename.startswith("file://"):
        path = Path(filename[len("file://") :])
    else:
        path = Path(filename)
        if not path.is_absolute():
            path = base / path
    path = path.resolve()
    if not path.is_file():
        raise ModelError(f"mesh {filename!r} resolves to {path}, which does not exist")
    return str(path)


def parse_urdf(path: str | os.PathLike[str]) -> ET.Element:
    """Parse a URDF file into its ``<robot>`` element with every mesh filename absolute.

    Raises:
        ModelError: the file is missing, is not well-formed XML, is not a ``<robot>``,
            or names a mesh that does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"URDF file {path} does not exist")
    try:
        robot = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ModelError(f"{path}: not well-formed XML: {exc}") from exc
    if robot.tag != "robot":
        raise ModelError(f"{path}: root element is <{robot.tag}>, expected <robot>")
    root = urdf_root()
    for mesh in robot.iter("mesh"):
        filename = mesh.get("filename")
        if filename is None:
            raise ModelError(f"{path}: <mesh> without a filename")
        try:
            mesh.set("filename", _resolve_filename(filename, path.parent, root))
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
    return robot


def resolve_urdf(path: str | os.PathLike[str]) -> str:
    """The text of a URDF file with every mesh filename made absolute."""
    return ET.tostring(parse_urdf(path), encoding="unicode")


def resolved_urdf_file(text: str) -> Path:
    """Write resolved URDF text to a content-addressed cache file and return its path.

    PyBullet loads URDF only from a file. The cache lives under the system temporary
    folder, one file per distinct text, so repeated loads reuse one file.
    """
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    folder = Path(tempfile.gettempdir()) / "robotcell-urdf"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}.urdf"
    if not target.exists():
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return target
