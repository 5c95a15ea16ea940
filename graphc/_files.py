"""Safe file writes: the one way graphc writes a file.

``export``, ``render``, the CLI's ``-o`` and ``graphc demo`` all go through
:func:`write_atomic`, so every write is

* atomic: the bytes go to a fresh temporary file in the target's folder,
  which is then renamed (or hard-linked) onto the target, so readers see the
  old file or the whole new one, never half of one;
* exclusive: the temporary file is created with ``O_CREAT | O_EXCL |
  O_NOFOLLOW`` under a random name, so a file or symbolic link planted at a
  guessable name cannot redirect the write;
* refusing: the target itself is never a symbolic link (graphc will not write
  through one, nor silently replace a link the user made), a directory, a
  device node, a FIFO or a socket, and an existing regular file is replaced
  only with ``overwrite=True``.  Without it the final step is ``os.link``,
  which fails if the target appeared meanwhile: of several concurrent writers
  exactly one succeeds;
* clean: the temporary file is removed on any exception.

See docs/threat-model.md.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import stat

from . import errors

__all__ = ["check_path", "check_target", "write_atomic"]

# Short, so a target name near the file-system limit (NAME_MAX, 255 bytes) still
# leaves room for the temporary name, which does not contain the target's name.
_TMP_PREFIX = ".graphc-"
_TMP_SUFFIX = ".tmp"
_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
          | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def check_path(path, what: str, *, where=None) -> pathlib.Path:
    """``path`` as a :class:`pathlib.Path`, or a clear error for None, bytes or a NUL.

    ``what`` names the caller ("graphc.export") in the message.
    """
    if isinstance(path, (bytes, bytearray)):
        raise errors.SignatureError(
            f"{what}: path={path!r} is bytes; graphc takes a str or pathlib.Path",
            where=where, hint="decode it first: path=os.fsdecode(path)")
    if not isinstance(path, (str, os.PathLike)):
        raise errors.SignatureError(
            f"{what}: path={path!r} is not a file name (a {type(path).__name__})",
            where=where, hint="pass a str or pathlib.Path, e.g. path='out/f.py'")
    text = os.fspath(path)
    if isinstance(text, bytes):
        raise errors.SignatureError(
            f"{what}: path={path!r} names a bytes path; graphc takes a str or pathlib.Path",
            where=where, hint="decode it first: path=os.fsdecode(path)")
    if "\0" in text:
        raise errors.OptionError(
            f"{what}: path={text!r} contains a NUL character ('\\0'), which no file name "
            "can hold", where=where, hint="remove the '\\0' from the file name")
    return pathlib.Path(text)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _why(e: OSError) -> str:
    if e.strerror and e.filename:
        return f"{e.strerror}: {e.filename}"
    return str(e.strerror or e)


def check_target(path: pathlib.Path, overwrite: bool, what: str, error=errors.ExportError,
                 where=None, hint: str = "pass overwrite=True to replace it, or choose another path"):
    """Raise unless ``path`` is absent, or a regular file and ``overwrite`` is true.

    A cheap early check (before tracing); :func:`write_atomic` checks again.
    """
    try:
        st = os.lstat(path)   # lstat: look at a symbolic link itself, never its target
    except (FileNotFoundError, NotADirectoryError):
        return   # nothing there (creating the folder reports a file in the way)
    except OSError as e:
        raise error(f"{what} cannot write {path} ({_why(e)})", where=where,
                    hint="choose a path in a writable directory") from None
    kind = _kind(st.st_mode)
    if kind == "a directory":
        raise error(f"{what} cannot write {path}: it is a directory", where=where,
                    hint=f"give a file name, e.g. path=dir / 'f{path.suffix or '.py'}'")
    if kind == "a symbolic link":
        # Safe choice: refuse.  Writing through the link would let whoever made it
        # choose which file graphc overwrites; replacing the link itself would
        # silently undo what the user set up.  Either way the user should decide.
        raise error(f"{what} will not write {path}: it is a symbolic link, and graphc never "
                    "writes through or replaces a link", where=where,
                    hint="remove the link, or give the path of the real file")
    if kind is not None:
        raise error(f"{what} will not write {path}: it is {kind}, not a regular file; graphc "
                    "only ever replaces regular files, even when asked to overwrite",
                    where=where, hint="choose a path that is a regular file or does not exist")
    if overwrite is not True:
        raise error(f"{what} will not overwrite {path}: the file exists", where=where, hint=hint)


def _make_temp(folder: pathlib.Path) -> tuple[int, pathlib.Path]:
    """Create a fresh temporary file in ``folder``: O_EXCL | O_NOFOLLOW, random name."""
    for _ in range(100):
        tmp = folder / f"{_TMP_PREFIX}{secrets.token_hex(6)}{_TMP_SUFFIX}"
        try:
            # 0o666 minus the umask, like open(path, "w") would give the target
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:   # pragma: no cover - 48 random bits collided
            continue
    raise FileExistsError(f"no free temporary file name in {folder}")  # pragma: no cover


def _link_exclusive(tmp: pathlib.Path, path: pathlib.Path) -> None:
    """Put ``tmp`` at ``path`` only if nothing is there (atomically)."""
    try:
        os.link(tmp, path, follow_symlinks=False)
        return
    except FileExistsError:
        raise
    except (OSError, NotImplementedError):
        pass   # no hard links on this file system (FAT, some network shares)
    # Fallback: claim the name exclusively, then rename over our own empty claim.
    fd = os.open(path, _FLAGS, 0o666)
    os.close(fd)
    os.replace(tmp, path)


def write_atomic(path, data, *, overwrite: bool = False, what: str = "graphc",
                 error=errors.ExportError, where=None,
                 hint: str = "pass overwrite=True to replace it, or choose another path"
                 ) -> pathlib.Path:
    """Write ``data`` (str, UTF-8, or bytes) to ``path`` safely; return the path.

    Parameters
    ----------
    overwrite : bool
        Replace an existing regular file.  Never replaces anything else.
    what : str
        The caller, for messages ("graphc.export").
    error : type
        The graphc error class raised when the file cannot be written.
    hint : str
        The hint when ``path`` exists and ``overwrite`` is not true.
    """
    path = check_path(path, what, where=where)
    if isinstance(data, str):
        data = data.encode("utf-8")
    check_target(path, overwrite, what, error, where, hint)
    tmp = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:   # e.g. a file where a folder of the path should be
            raise error(f"{what} cannot write {path} ({_why(e)})", where=where,
                        hint="choose a path in a writable directory") from None
        try:
            fd, tmp = _make_temp(path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if overwrite is True:
                # Checked again just before the rename, to keep the window small;
                # rename itself never writes into or follows what it replaces.
                check_target(path, True, what, error, where, hint)
                os.replace(tmp, path)
            else:
                _link_exclusive(tmp, path)
                os.unlink(tmp)
            tmp = None
        except FileExistsError:
            if overwrite is True or not os.path.lexists(path):
                raise
            # someone else created it between our check and our link
            check_target(path, False, what, error, where, hint)
            raise
    except OSError as e:
        raise error(f"{what} cannot write {path} ({_why(e)})", where=where,
                    hint="choose a path in a writable directory") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path
