"""Output folders: mnv2gen never deletes or overwrites what it did not write.

For `build -o`, `verify --keep` and `estimate --png`, `output_directory`:
- creates DIR if missing (its parent must exist) with mode 0777 & ~umask;
- stops with exit 2 before it writes anything when DIR holds anything mnv2gen did not write
  there, or a file it wrote was changed since. What it wrote is listed in
  DIR/.mnv2gen-manifest with each file's SHA-256. `--force` writes anyway: files of the
  generated names are replaced, nothing else is touched;
- refuses `/`, and never removes DIR itself (it may be the working directory or a parent
  of it): only files listed in the manifest are replaced or deleted;
- makes the new files in a hidden staging folder inside DIR and moves them into place only
  when the command succeeded, so a failure leaves the previous output as it was. While they
  are moved the manifest accepts both versions, so an interrupted move is still known;
- lets one command write a folder at a time (a lock on DIR; a second one waits). Staging
  folders left by a killed command are removed by the next one, which holds the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mnv2gen import __version__
from mnv2gen.errors import MnvError
from mnv2gen.fslock import LOCK_FILE, DirectoryLock
from mnv2gen.fsutil import require_path, shown

MANIFEST = ".mnv2gen-manifest"
STAGING_PREFIX = ".mnv2gen-staging-"
LOCK_WAIT_S = 600.0
FORCE_HINT = ("choose an empty or new folder, or pass --force to write into it anyway "
              "(files of the generated names are replaced, nothing else is touched)")

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(folder: Path) -> dict:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        files = {str(k): [str(h) for h in v] for k, v in data["files"].items()}
        return {"files": files, "products": [str(p) for p in data.get("products", [])]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {"files": {}, "products": []}


def _write_manifest(folder: Path, staging: Path, files: dict[str, list[str]],
                    products) -> None:
    """Replace the manifest of `folder` atomically (through the staging folder)."""
    text = json.dumps({"written_by": f"mnv2gen {__version__}", "files": files,
                       "products": sorted(products)}, indent=1, sort_keys=True) + "\n"
    (staging / MANIFEST).write_text(text)
    os.replace(staging / MANIFEST, folder / MANIFEST)


def _entries(folder: Path, skip_top: set[str]) -> tuple[list[str], list[str]]:
    """Return (files, empty or unreadable folders) under `folder` as relative POSIX paths,
    not following links and skipping the top-level names in `skip_top`."""
    files, empty = [], []
    for root, dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in skip_top and not d.startswith(STAGING_PREFIX)]
            names = [n for n in names if n not in skip_top]
        for d in list(dirs):
            if (Path(root) / d).is_symlink():
                dirs.remove(d)
                names.append(d)
        files += [(rel / n).as_posix() for n in names]
        if not dirs and not names and rel != Path("."):
            empty.append(rel.as_posix())
    return files, empty


class _Owned:
    """What mnv2gen wrote in a folder before, and what else is there."""

    def __init__(self, folder: Path) -> None:
        manifest = _read_manifest(folder)
        self.recorded = manifest["files"]
        self.products = manifest["products"] if self.recorded else []
        files, empty = _entries(folder, {MANIFEST, LOCK_FILE, *self.products})
        parents = {p.as_posix() for rel in self.recorded for p in Path(rel).parents}
        self.ours, self.changed, self.foreign = [], [], []
        for rel in files:
            if rel not in self.recorded:
                self.foreign.append(rel)
            elif _sha256(folder / rel) in self.recorded[rel]:
                self.ours.append(rel)
            else:
                self.changed.append(rel)
        self.foreign += [d for d in empty if d not in parents]


def _commit(folder: Path, staging: Path, owned: _Owned, products) -> None:
    """Move the staged files into `folder`, delete what mnv2gen wrote before and no longer
    writes, and record the new files."""
    new = {rel: _sha256(staging / rel) for rel in _entries(staging, set())[0]}
    pending = {rel: sorted(set(owned.recorded.get(rel, [])) | {new.get(rel, "")} - {""})
               for rel in {*owned.recorded, *new}}
    _write_manifest(folder, staging, pending, {*owned.products, *products})
    for rel in sorted(new):
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not dest.is_symlink():
            raise MnvError(f"{shown(dest)} is a folder; mnv2gen would write a file there",
                           "move it away")
        os.replace(staging / rel, dest)
    stale = [rel for rel in owned.ours if rel not in new]
    for rel in stale:
        with contextlib.suppress(FileNotFoundError):
            (folder / rel).unlink()
    for d in sorted({p for rel in stale for p in Path(rel).parents if p != Path(".")},
                    key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            (folder / d).rmdir()  # only if empty: never what someone else put there
    _write_manifest(folder, staging, {rel: [h] for rel, h in new.items()},
                    {*owned.products, *products})


def _locked_folder(target: Path, option: str) -> tuple[DirectoryLock, bool]:
    """Create `target` if missing and lock it; return (lock, created by us)."""
    for _ in range(20):
        created = False
        try:
            os.mkdir(target)
            created = True
        except FileExistsError:
            if not target.is_dir():
                raise MnvError(f"{option} {shown(target)} exists and is not a folder",
                               "give a folder for the output") from None
        lock = DirectoryLock(target)
        try:
            lock.acquire(LOCK_WAIT_S, lambda: sys.stderr.write(
                f"waiting: another mnv2gen is writing {shown(target)}\n"))
        except TimeoutError:
            raise MnvError(f"{shown(target)}: another mnv2gen has been writing it for "
                           f"{LOCK_WAIT_S:.0f} s", "wait for it or write elsewhere") from None
        except FileNotFoundError:
            continue  # removed by the build that created it; start again
        if lock.still_there():
            return lock, created
        lock.release()
    raise MnvError(f"{shown(target)}: the folder keeps disappearing", "write elsewhere")


def _abandon(target: Path, staging: Path | None, created: bool) -> None:
    """Remove the staging folder, and the output folder if this command created it."""
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    if created:
        with contextlib.suppress(OSError):
            (target / LOCK_FILE).unlink()
        with contextlib.suppress(OSError):
            target.rmdir()


def _output_folder(path: str | Path, option: str) -> Path:
    """Return the resolved output folder `path`, or MnvError for a path that cannot be one."""
    given = require_path(path, option)
    if given.exists() and not given.is_dir():
        raise MnvError(f"{option} {shown(path)} exists and is not a folder",
                       "give a folder for the output")
    target = given.resolve()
    if target == Path(target.anchor):
        raise MnvError(f"{option} {shown(path)}: refusing to write into the root folder",
                       "give a folder of its own, e.g. ./model")
    if not target.parent.is_dir():
        raise MnvError(f"{shown(path)}: parent folder {shown(target.parent)} does not exist",
                       "create it first")
    return target


def _check_contents(owned: _Owned, path: str | Path, force: bool) -> None:
    if owned.foreign and not force:
        raise MnvError(f"{shown(path)} is not empty and was not written by mnv2gen",
                       FORCE_HINT)
    if owned.changed and not force:
        raise MnvError(f"{shown(path)}: {shown(owned.changed[0])} was changed after "
                       "mnv2gen wrote it", "pass --force to replace it")


def check_output_directory(path: str | Path, *, option: str = "-o", force: bool = False) -> None:
    """Raise the MnvError `output_directory` would raise before writing (a quick check
    before long work; `output_directory` checks again under its lock)."""
    target = _output_folder(path, option)
    if target.is_dir():
        _check_contents(_Owned(target), path, force)


@contextlib.contextmanager
def output_directory(path: str | Path, *, option: str = "-o", force: bool = False,
                     products: tuple[str, ...] = (),
                     keep_on_error: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder; when the block succeeds (or raises an MnvError with
    `keep_on_error`) its files replace what mnv2gen wrote in `path` before (see the module
    docstring). `products` names top-level entries that builds of the output make (e.g.
    make's `build/`): they are left alone and do not count as foreign."""
    target = _output_folder(path, option)
    try:
        lock, created = _locked_folder(target, option)
    except OSError as exc:
        raise MnvError(f"{shown(path)}: cannot create the folder ({exc.strerror})") from None
    staging = None
    try:
        for entry in target.iterdir():
            if entry.name.startswith(STAGING_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)  # left by a killed command
        owned = _Owned(target)
        _check_contents(owned, path, force)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target))
        try:
            yield staging
        except MnvError:
            if keep_on_error:
                _commit(target, staging, owned, products)
                created = False
            raise
        _commit(target, staging, owned, products)
        created = False
    except OSError as exc:
        raise MnvError(f"{shown(path)}: cannot write ({exc.strerror or exc})") from None
    finally:
        _abandon(target, staging, created)
        lock.release()
