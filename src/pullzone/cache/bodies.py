"""Body files on local disk, and the in-progress fill file that makes misses collapse.

A fill is written to `tmp/<key_hash>.part`, which appears (a link) already held under an
exclusive flock by the one process fetching it (the leader). Every other request for the
same object, in any worker process, reads that file as it grows. Its layout:

    preamble (12 bytes): magic "PZ01", state, pad, error status (u16), head length (u32)
    head (stored.ResponseHead as JSON)
    body

The leader's file is made ahead, unnamed (`SpareFiles`), and the claim links it to
`tmp/<key_hash>.part`; where the file system cannot make unnamed files, under a private
name first.

When the body is complete the leader hard-links the file to its final name
`objects/<id[:2]>/<id>`, inserts the index row, and only then sets the state to COMPLETE:
a row never names a partial file, whatever moment a process is killed (README, How the edge caches).
When the index cannot take the row (its disk is full), the leader unlinks the final name
again and still sets COMPLETE: the body is whole for its readers, just not stored.
A part file whose leader died holds no lock, and the next request clears it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import random
import shutil
import struct
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pullzone.cache.stored import ResponseHead

MAGIC = b"PZ01"
PREAMBLE = struct.Struct("<4sBxHI")
# Every reader of a fill holds an open-file-description read lock on this byte (far past
# any body), released when it closes, in whatever process: the leader asks whether any is
# left (F_OFD_GETLK) to tell a fill someone reads from one nobody does.
_FLOCK = struct.Struct("hhqqi4x")  # struct flock: type, whence, start, len, pid
_READER_BYTE = 2**62

FILLING = 0
COMPLETE = 1
FAILED = 2  # the origin failed before the head; the error status says how
PASS = 3  # the response is not storable: each waiting request fetches on its own
REVALIDATED = 4  # the origin answered 304: the index row was refreshed, read it again

SPARE_FILES = 32  # unnamed files each worker keeps made ahead for its next claims

# Names of body files and budget rows: unique, never secret (nothing is guarded by them),
# so drawn from a generator seeded once per process rather than from getrandom(2) per
# name, which had 2 % of a worker's loop under S15 (bench/README.md, stop 34).
_names = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _names.seed(os.urandom(32)))


def unique_hex(nbytes: int) -> str:
    """`nbytes` random bytes in hex, as secrets.token_hex, for names that must not repeat."""
    return f"{_names.getrandbits(nbytes * 8):0{nbytes * 2}x}"


class BodyStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self._objects = str(self.objects)
        self.tmp = root / "tmp"
        self._tmp = str(self.tmp)
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.spares = SpareFiles(self._tmp)

    def object_path(self, object_id: str) -> Path:
        return self.objects / object_id[:2] / object_id

    def object_file(self, object_id: str) -> str:
        """`object_path` as a str, for what is kept per entry (a fraction of a Path, and
        made without Path's parsing)."""
        return f"{self._objects}/{object_id[:2]}/{object_id}"

    def part_path(self, key_hash: str) -> Path:
        return Path(self.part_file(key_hash))

    def part_file(self, key_hash: str) -> str:
        """`part_path` as a str (os calls take it as it is: no Path made per fill)."""
        return f"{self._tmp}/{key_hash}.part"

    @staticmethod
    def new_id() -> str:
        return unique_hex(16)

    def remove(self, ids: Iterable[str]) -> None:
        for object_id in ids:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.object_file(object_id))

    def clear_tmp(self) -> None:
        """At startup, before any worker runs: no fill can be in progress."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def stored_ids(self) -> Iterable[tuple[str, Path]]:
        for shard in self.objects.iterdir():
            for path in shard.iterdir():
                yield path.name, path


class SpareFiles:
    """Unnamed files (open(2) O_TMPFILE in tmp/), each under its flock, made ahead in a
    thread for the claims of one process: making the inode was a tenth of a worker's
    loop under S15 (bench/README.md, stop 34; on ext4 a create scans past the inodes
    freed in the last minutes, and eviction frees many), and a claim on the loop now
    only links a spare file to its name. A spare file has no name: a crash leaves none.
    A file system without unnamed files (or no /proc to link them by) gets None."""

    def __init__(self, directory: str, stock: int = SPARE_FILES, *, unnamed: bool = True) -> None:
        """`unnamed=False`: claims name their files privately first, as on a file
        system without O_TMPFILE (found out by the first claim otherwise)."""
        self._directory = directory
        self._stock = stock
        self._files: list[int] = []
        self._dir_fd = -1
        self._supported = unnamed and os.path.isdir("/proc/self/fd")
        self._refilling = False
        self._thread: ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        weakref.finalize(self, _close_all, self._files)

    def take(self) -> int | None:
        """A locked unnamed file's descriptor (one made now when none is left), or None
        when this file system cannot make them."""
        if not self._supported:
            return None
        if self._pid != os.getpid():
            self._forked()
        if len(self._files) <= self._stock // 2 and not self._refilling:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="pullzone-spare-files")
            self._refilling = True
            with contextlib.suppress(RuntimeError):  # the process is stopping
                self._thread.submit(self._refill)
        try:
            return self._files.pop()
        except IndexError:
            return self._make()

    def give_back(self, fd: int) -> None:
        self._files.append(fd)

    def stocked(self) -> int:
        """How many spare files are ready."""
        return len(self._files)

    def join(self) -> None:
        """Wait for the refill under way, if any."""
        if self._thread is not None:
            self._thread.submit(lambda: None).result()

    def _forked(self) -> None:
        """In a child forked from the process that made them, the spare files are the
        parent's too (one open file description, one flock): never used here. Nor is
        the parent's thread, which the child does not have."""
        self._pid = os.getpid()
        _close_all(self._files)
        self._thread, self._refilling = None, False

    def link(self, fd: int, name: str) -> None:
        """Give spare file `fd` the name `name` in the directory (FileExistsError if taken)."""
        if self._dir_fd < 0:
            self._dir_fd = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY)
        # A directory descriptor makes os.link call linkat(2) with AT_SYMLINK_FOLLOW,
        # which links the file /proc/self/fd/N stands for.
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=self._dir_fd)

    def _refill(self) -> None:
        try:
            while len(self._files) < self._stock:
                fd = self._make()
                if fd is None:
                    return
                self._files.append(fd)
        except OSError:
            pass  # out of descriptors or disk: the claims make theirs, and say so
        finally:
            self._refilling = False

    def _make(self) -> int | None:
        try:
            fd = os.open(self._directory, os.O_RDWR | os.O_TMPFILE, 0o600)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
            self._supported = False
            return None
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd


def _close_all(fds: list[int]) -> None:
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
_FALLOC_FL_KEEP_SIZE = 1  # allocate blocks, leave the size: readers see only what is written


def _reserve(fd: int, size: int) -> None:
    """fallocate(2) `size` bytes from 0; a file system without it reserves nothing."""
    if size > 0 and _libc.fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, size) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EOPNOTSUPP, errno.ENOSYS):
            raise OSError(err, os.strerror(err))


class FillWriter:
    """The leader's side of a fill."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        self.body_offset = 0
        self.written = 0
        self.head_json = ""  # the head as written, which the index row stores as it is
        self._closed = False

    @classmethod
    def claim(cls, store: BodyStore, key_hash: str) -> FillWriter | None:
        """Become the leader for this object, or None when a live leader exists.

        The part file is created and locked first, unnamed or under a private name,
        then linked to its shared name (which fails if that exists): the shared name
        never shows an unlocked file, which another process would take for an abandoned
        one and remove, leaving two leaders (and a follower reading the wrong file)."""
        path = store.part_file(key_hash)
        private = None
        fd = store.spares.take()
        if fd is None:  # no unnamed files here
            private = f"{path}.{os.getpid()}.{unique_hex(4)}"
            fd = os.open(private, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if private is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            for _ in range(3):
                try:
                    if private is None:
                        store.spares.link(fd, f"{key_hash}.part")
                    else:
                        os.link(private, path)
                except FileExistsError:
                    if not _clear_if_abandoned(path):
                        break
                    continue
                writer = cls(fd, path)
                fd = -1
                return writer
            return None
        finally:
            if private is not None:
                os.unlink(private)
                if fd >= 0:
                    os.close(fd)
            elif fd >= 0:
                store.spares.give_back(fd)  # still unnamed and unwritten

    def write_head(self, head: ResponseHead, body: bytes = b"") -> None:
        """Write the head (and `body`, when all of it is at hand: one write); with the
        body's length known, first reserve the disk space of the whole file, so a disk
        too full for the object fails here (OSError ENOSPC), before anything is promised
        to a client, never in the middle of its body."""
        self.head_json = head.to_json()
        data = self.head_json.encode()
        if head.length is not None and len(body) < head.length:
            _reserve(self.fd, PREAMBLE.size + len(data) + head.length)
        self.body_offset = PREAMBLE.size + len(data)
        self._write(PREAMBLE.pack(MAGIC, FILLING, 0, len(data)) + data + body)
        self.written = len(body)

    def write(self, chunk: bytes) -> None:
        self._write(chunk)
        self.written += len(chunk)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def has_readers(self) -> bool:
        """Whether any FillReader of this fill is still open."""
        probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, _READER_BYTE, 1, 0)
        lock_type = _FLOCK.unpack(fcntl.fcntl(self.fd, fcntl.F_OFD_GETLK, probe))[0]
        return bool(lock_type != fcntl.F_UNLCK)

    def complete(self, final: str | Path) -> None:
        """Give the whole file its final name; the caller then indexes it and calls
        `end(COMPLETE)`, so followers finish only once the object is findable."""
        try:
            os.link(self.path, final)
        except FileNotFoundError:  # the first object of its shard directory
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.link(self.path, final)

    def end(self, state: int = FAILED, error_status: int = 0) -> None:
        """Release the fill: set its final state, unlink the part name, wake followers."""
        if self._closed:
            return
        self._closed = True
        try:
            # On a full disk the state may not be writable: followers then find the
            # leader gone (FillReader.state) and answer 502 rather than wait.
            with contextlib.suppress(OSError):
                self._set_state(state, error_status)
            os.unlink(self.path)
        finally:
            os.close(self.fd)  # releases the flock

    def _set_state(self, state: int, error_status: int = 0) -> None:
        if os.fstat(self.fd).st_size < PREAMBLE.size:
            os.pwrite(self.fd, PREAMBLE.pack(MAGIC, state, error_status, 0), 0)
        else:
            os.pwrite(self.fd, bytes([state]), 4)
            if error_status:
                os.pwrite(self.fd, struct.pack("<H", error_status), 6)


def _clear_if_abandoned(path: str) -> bool:
    """Remove a part file whose leader died; True if the path is free again."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False  # a live leader holds it
            raise
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)
        except FileNotFoundError:
            pass
        return True
    finally:
        os.close(fd)


class FillReader:
    """A follower's view of a fill in progress: the head once known, then the body."""

    def __init__(self, fd: int, key_hash: str) -> None:
        self.fd = fd
        self.key_hash = key_hash
        self.head: ResponseHead | None = None
        self.body_offset = 0
        # The reader of a fill led in its own process, which cannot die without it: its
        # leader is not looked for (a flock per look).
        self.beside_leader = False

    @classmethod
    def open(cls, store: BodyStore, key_hash: str) -> FillReader | None:
        try:
            fd = os.open(store.part_file(key_hash), os.O_RDONLY)
        except FileNotFoundError:
            return None
        lock = _FLOCK.pack(fcntl.F_RDLCK, os.SEEK_SET, _READER_BYTE, 1, 0)
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lock)  # never refused: the leader takes none
        return cls(fd, key_hash)

    @classmethod
    def of_leader(cls, writer: FillWriter, key_hash: str, head: ResponseHead) -> FillReader:
        """A reader of the fill `writer` leads in this process, for the client that
        asked for it: its head is the one just written, not read back and parsed, and its
        leader is not looked for (a flock per look): it cannot die without the reader."""
        fd = os.open(writer.path, os.O_RDONLY)
        lock = _FLOCK.pack(fcntl.F_RDLCK, os.SEEK_SET, _READER_BYTE, 1, 0)
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lock)
        reader = cls(fd, key_hash)
        reader.head, reader.body_offset, reader.beside_leader = head, writer.body_offset, True
        return reader

    def state(self) -> tuple[int, int]:
        """(state, error status); FAILED when the leader died without saying so."""
        state, error = self._read_state()
        if state == FILLING and not self.beside_leader and self._leader_gone():
            state, error = self._read_state()  # it may have finished in between
            if state == FILLING:
                return FAILED, 502
        return state, error

    def leader_died(self) -> bool:
        """Whether the leader's process ended before it said how the fill ended."""
        return self._read_state()[0] == FILLING and self._leader_gone()

    def _read_state(self) -> tuple[int, int]:
        raw = os.pread(self.fd, PREAMBLE.size, 0)
        if len(raw) < PREAMBLE.size:
            return FILLING, 0
        _, state, error, _ = PREAMBLE.unpack(raw)
        return state, error

    def read_head(self) -> ResponseHead | None:
        """The head, once the leader has written it."""
        if self.head is None:
            raw = os.pread(self.fd, PREAMBLE.size, 0)
            if len(raw) == PREAMBLE.size:
                _, _, _, head_len = PREAMBLE.unpack(raw)
                if head_len:
                    data = os.pread(self.fd, head_len, PREAMBLE.size)
                    if len(data) == head_len:
                        self.head = ResponseHead.from_json(data)
                        self.body_offset = PREAMBLE.size + head_len
        return self.head

    def is_last(self, position: int) -> bool:
        """Whether body bytes up to `position` are all the head announced."""
        head = self.head
        return head is not None and head.length is not None and position >= head.length

    def read(self, position: int, size: int) -> bytes:
        """Body bytes from `position` (relative to the body), as many as are written."""
        return os.pread(self.fd, size, self.body_offset + position)

    def _leader_gone(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        return True

    def close(self) -> None:
        os.close(self.fd)
