"""Output files: mnv2gen never overwrites a file it did not write.

`write_file` (the `-o` of zoo, quantize, run; `estimate --html`) writes to a temporary
sibling, then renames it over the target; an existing file is replaced only if mnv2gen
wrote it (`ours`: a TFLite description, an HTML generator tag, a .npy of the expected shape)
or with --force; an empty path or a folder is refused. Modes follow the umask (0644 with
the usual 022). Temporaries of a killed writer are removed by the next write. Output folders
follow the same rules in `mnv2gen.outdir`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mnv2gen.errors import MnvError
from mnv2gen.fslock import try_lock


def shown(path: str | Path) -> str:
    """Return `path` for a message: non-printable characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def require_path(value: str | Path | None, option: str) -> Path:
    """Return `value` as a Path; MnvError (usage, exit 2) when it is empty."""
    if value is None or not str(value).strip():
        raise MnvError(f"{option} needs a path, got an empty one",
                       f"give a path, e.g. {option} out/ (use . for the current folder)")
    return Path(value)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_temporaries(folder: Path, prefix: str) -> None:
    """Delete temporary files of `prefix` that no live writer holds (killed writers)."""
    for entry in folder.iterdir():
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        with contextlib.suppress(OSError):
            if time.time() - entry.lstat().st_mtime < 2.0:
                continue  # just created: its writer may not hold its lock yet
            fd = os.open(entry, os.O_RDWR)
            try:
                if try_lock(fd):
                    entry.unlink()
            finally:
                os.close(fd)


def write_file(path: str | Path, data: bytes, *, option: str = "-o", force: bool = False,
               ours: Callable[[Path], bool] | None = None) -> None:
    """Write `data` to the file `path` atomically, following the module's rules."""
    target = require_path(path, option)
    if target.is_dir():
        raise MnvError(f"{option} {shown(path)} is a folder, not a file",
                       "give a file name inside it")
    folder = target.absolute().parent
    if not folder.is_dir():
        raise MnvError(f"{shown(path)}: folder {shown(folder)} does not exist",
                       "create it first or write elsewhere")
    if (target.exists() or target.is_symlink()) and not force and not (ours and ours(target)):
        raise MnvError(f"{shown(path)} exists and was not written by mnv2gen",
                       "choose another name, or pass --force to replace it")
    prefix = f".{target.name[:80]}.mnv2gen-"
    try:
        _remove_stale_temporaries(folder, prefix)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
    except OSError as exc:
        raise MnvError(f"{shown(path)}: cannot write ({exc.strerror})") from None
    try:
        try_lock(fd)  # marks the temporary as in use for _remove_stale_temporaries
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise MnvError(f"{shown(path)}: cannot write ({exc.strerror})") from None
        raise


def tflite_by_mnv2gen(path: Path) -> bool:
    """Return True for a .tflite file mnv2gen wrote (its description is 'mnv2gen')."""
    try:
        data = path.read_bytes()
        if data[4:8] != b"TFL3":
            return False
        import tflite

        return tflite.Model.GetRootAsModel(data, 0).Description() == b"mnv2gen"
    except Exception:  # anything unreadable is not ours
        return False


def html_by_mnv2gen(path: Path) -> bool:
    """Return True for an HTML report mnv2gen wrote (its generator meta tag)."""
    try:
        with open(path, "rb") as f:
            return b"<meta name=generator content=mnv2gen>" in f.read(4096)
    except OSError:
        return False


def npz_with(keys: list[str]) -> Callable[[Path], bool]:
    """Return a test: is a file a .npz archive of exactly these arrays (what `run -o x.npz`
    writes for this model)?"""
    import numpy as np

    def test(path: Path) -> bool:
        try:
            with np.load(path, allow_pickle=False) as archive:
                return sorted(archive.files) == sorted(keys)
        except Exception:
            return False
    return test


def npy_like(shape: tuple[int, ...], dtype) -> Callable[[Path], bool]:
    """Return a test: is a file a .npy array of this shape and dtype (what `run -o` writes
    for this model; .npy has no room for a mark)?"""
    import numpy as np

    def test(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                got_shape, _, got_dtype = read(f)
            return tuple(got_shape) == tuple(shape) and got_dtype == np.dtype(dtype)
        except Exception:
            return False
    return test
