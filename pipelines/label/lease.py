"""A run's lease on its output folder: one live run at a time, decided by the storage's own exclusive create.

    OUTPUT/_LOCK.<generation>   {"run_id", "host", "pid", "process_space", "since", "expires"}

A run takes the lease by creating the next generation's file exclusively: a hard link (`link(2)`, as exclusive
as `O_EXCL` but never seen empty) on a local disk,
`If-None-Match: *` on S3 (s3fs `mode="create"`); other fsspec stores get `mode="create"` too (gcsfs: untested
here; fsspec's generic fallback checks then writes, which is not atomic). Of two runs started at
once exactly one create succeeds; the other is refused in one line. The highest generation is the holder, so
taking over a dead run's lease never deletes a file another run may have just written (a check-then-write
`_LOCK` let two overlapping cron runs both start, and its release deleted whichever lock was there).

A lease lasts `ttl_s` past its last renewal; a thread renews it every quarter of that while the run lives. It is
stale once expired, or at once when its process is gone and was in this process space (same host, boot and pid
namespace: containers that share a hostname do not share pids). Only its owner releases it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from pipelines.errors import UserError
from pipelines.label.read import is_local

PREFIX = "_LOCK."


class LeaseLostError(RuntimeError):
    """Another run took over this run's lease (it was not renewed in time); the run must not commit."""


def process_space() -> str:
    """Who can see this process's pids: the host, its boot and its pid namespace."""
    parts = [socket.gethostname()]
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            parts.append(handle.read().strip())
    except OSError:
        pass
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return "/".join(parts)


def stale(holder: dict, now: float | None = None) -> bool:
    """An expired lease, or one whose process is gone from this very process space."""
    now = time.time() if now is None else now
    if float(holder.get("expires", 0)) < now:
        return True
    if holder.get("process_space") == process_space():
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def create_exclusive(fs, path: str, data: bytes) -> None:
    """Write `path` only if it does not exist, atomically on the storage; FileExistsError otherwise."""
    if is_local(fs):  # written whole beside it, then hard-linked in: link(2) fails if `path` exists, and a
        os.makedirs(os.path.dirname(path), exist_ok=True)  # reader never sees it empty (O_EXCL then write did)
        temporary = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise
        except OSError:  # a disk without hard links (some network and FUSE mounts): O_EXCL, then write
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        finally:
            os.unlink(temporary)
        return
    try:
        fs.pipe_file(path, data, mode="create")  # s3fs: If-None-Match: *; gcsfs: ifGenerationMatch=0
    except FileExistsError:
        raise
    except OSError as error:  # some stores answer a failed precondition with a bare 412
        if "412" in str(error) or "recondition" in str(error):
            raise FileExistsError(path) from error
        raise


def overwrite(fs, path: str, data: bytes) -> None:
    """Replace `path` whole (readers never see half a lease)."""
    if is_local(fs):
        temporary = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    else:
        fs.pipe_file(path, data)


@dataclass
class Lease:
    """The lease this run holds on `root`; `release()` it when the run ends."""

    fs: object
    root: str
    run_id: str
    generation: int
    ttl_s: float
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return lease_path(self.root, self.generation)

    @classmethod
    def acquire(cls, fs, root: str, run_id: str, ttl_s: float = 600) -> "Lease":
        """Take the lease, or raise UserError naming the live run that holds it."""
        fs.makedirs(root, exist_ok=True)
        for _ in range(5):  # lose a race for a dead run's lease: look again at who won
            generation, holder = current(fs, root)
            if holder is not None and not stale(holder):
                raise UserError(f"{lease_path(root, generation)} is held by run {holder['run_id']} (pid "
                                f"{holder['pid']} on {holder['host']}, renewed until "
                                f"{time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(holder['expires']))}); "
                                "wait for it to finish, or delete that file if you know the run is dead")
            lease = cls(fs, root, run_id, generation + 1, ttl_s)
            try:
                create_exclusive(fs, lease.path, lease._content())
            except FileExistsError:
                continue
            if holder is not None:  # the dead run's file; ours, the higher generation, already rules
                try:
                    fs.rm(lease_path(root, generation))
                except FileNotFoundError:
                    pass
            lease._start_renewing()
            return lease
        raise UserError(f"{root}: other runs keep taking its lease; try again later")

    def _content(self) -> bytes:
        now = time.time()
        return json.dumps({"run_id": self.run_id, "host": socket.gethostname(), "pid": os.getpid(),
                           "process_space": process_space(), "since": now, "expires": now + self.ttl_s}).encode()

    def _start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="kobert-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                self.renew()
            except LeaseLostError:
                return
            except Exception:  # a failed renewal is retried; expiry is ttl_s away
                continue

    def renew(self) -> None:
        """Push the expiry `ttl_s` ahead, unless a later generation has taken over."""
        self.confirm()
        overwrite(self.fs, self.path, self._content())

    def confirm(self) -> None:
        """Raise LeaseLostError if another run now holds the lease (checked again right before the commit)."""
        generation, holder = current(self.fs, self.root)
        if generation != self.generation or holder is None or holder.get("run_id") != self.run_id:
            raise LeaseLostError(f"run {self.run_id} lost its lease on {self.root} to "
                                 f"{holder['run_id'] if holder else 'nobody'} (not renewed for {self.ttl_s:g} s); "
                                 "nothing committed")

    def release(self) -> None:
        """Stop renewing and delete the lease file, only if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            holder = json.loads(self.fs.cat_file(self.path))
        except (FileNotFoundError, ValueError):
            return
        if holder.get("run_id") == self.run_id:
            self.fs.rm(self.path)


def lease_path(root: str, generation: int) -> str:
    return f"{root}/{PREFIX}{generation:08d}"


def current(fs, root: str) -> tuple[int, dict | None]:
    """The highest lease generation under `root` and its holder (0, None when there is none)."""
    fs.invalidate_cache(root)
    try:
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)]
    except FileNotFoundError:
        return 0, None
    generations = sorted(int(n[len(PREFIX):]) for n in names if n.startswith(PREFIX) and n[len(PREFIX):].isdigit())
    for generation in reversed(generations):
        try:
            return generation, json.loads(fs.cat_file(lease_path(root, generation)))
        except FileNotFoundError:  # released between the listing and the read
            continue
        except ValueError:  # half-written by a store without atomic puts: treat as held until it expires
            return generation, {"run_id": "?", "host": "?", "pid": 0, "expires": time.time() + 60}
    return (generations[-1] if generations else 0), None
