"""Safe output files: atomic writes (temp file + rename) that never clobber an input."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


def check_input_file(path: PathLike) -> Path:
    """An existing, non-empty, readable regular file, or an InputError saying what is wrong."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input {p} does not exist")
    if p.is_dir():
        raise InputError(f"input {p} is a directory, not a file")
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):  # its size says nothing, and a second read would differ
            raise InputError(f"input {p} is not a regular file (a pipe or a device); save it to a file first")
        size = info.st_size
        if not os.access(p, os.R_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    if size == 0:
        raise InputError(f"input {p} is empty")
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(output: PathLike, inputs: Iterable[PathLike] = ()) -> Path:
    """Refuse an output that is one of the inputs or lies in a missing / unwritable folder."""
    out = Path(output)
    for inp in inputs:
        ip = Path(inp)
        if not ip.exists():  # a missing input fails on its own, with its own message
            continue
        if out.resolve() == ip.resolve() or _same_file(out, ip):
            raise InputError(f"output {out} is the input file; choose another output path")
    try:
        mode: Optional[int] = out.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # e.g. a name too long for the file system
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(f"output {out} is a directory")
    if mode is not None and not stat.S_ISREG(mode):  # a rename would replace the device or pipe with a file
        raise InputError(f"output {out} is not a regular file (a device or a pipe); outputs are written to a "
                         "temporary file and renamed, so give a file path")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder {parent} is not writable")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(output: PathLike, inputs: Iterable[PathLike] = (), suffix: Optional[str] = None) -> Iterator[Path]:
    """Yield a temporary path beside ``output``; on success it is renamed onto ``output``.

    On any error the temporary file is removed and ``output`` is left untouched.
    """
    out = check_output_path(output, inputs)
    suffix = suffix if suffix is not None else out.suffix
    try:
        # the name is kept short (any legal output name stays legal with the temporary affixes)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem[:32]}.", suffix=f".part{suffix[:16]}", dir=out.parent or ".")
    except OSError as exc:  # e.g. a name too long, a read-only or virtual file system
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes it 0600: give the output the permissions a plain open() would
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and {tmp_name, str(out)} & {exc.filename, exc.filename2}:
            # say which output failed, not the hidden temporary file's name
            raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
        raise


def file_stamp(path: PathLike) -> dict[str, int]:
    """What a resume compares to tell a file unchanged: its size and modification time (ns)."""
    st = Path(path).stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def ensure_folder(folder: PathLike, what: str = "output folder") -> Path:
    """``folder`` created with its parents (an existing folder is fine), or an InputError in one line
    (a file of that name, a read-only or virtual file system)."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    return path


LOCK_NAME = ".m3cvc.lock"


@contextlib.contextmanager
def folder_lock(folder: PathLike, job: str) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) while the block runs, so that two runs
    writing the same results or manifest cannot interleave; a second run gets a one-line InputError
    naming ``job`` and the holder's process id. The lock is an advisory ``flock`` on ``folder/.m3cvc.lock``
    (released by the kernel when the process ends, even by SIGKILL; the empty file stays). Where the
    platform or file system has no ``flock`` the block runs unlocked."""
    path = ensure_folder(folder) / LOCK_NAME
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield path
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InputError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise InputError(f"another {job} (process {holder}) is writing to {folder}: wait for it to end, or give "
                             "another output folder") from None  # fmt: skip
        except OSError:  # a file system without flock (some network mounts): run unlocked
            pass
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)


def write_bytes_atomic(output: PathLike, data: bytes, inputs: Iterable[PathLike] = ()) -> Path:
    with atomic_path(output, inputs) as tmp:
        tmp.write_bytes(data)
    return Path(output)


def write_text_atomic(output: PathLike, text: str, inputs: Iterable[PathLike] = ()) -> Path:
    return write_bytes_atomic(output, text.encode("utf-8"), inputs)
