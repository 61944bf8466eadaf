"""Do grading processes on one machine (the worker processes of a Dask cluster) share its
cores, so that two training jobs never run at once on cores meant for one?

Each test starts real processes that take cores from one ``HostCores`` folder and write
down when they held them; nothing is simulated.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.scheduling import HostCores, Slots, machine_cores_folder

from helpers import REPO

HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from autograder.scheduling import HostCores
cores = HostCores({folder!r}, cores={cores})
with cores.hold({n}) as held:
    start = time.monotonic()
    print("held", flush=True)
    time.sleep({seconds})
    end = time.monotonic()
with open({log!r}, "a") as f:
    f.write(f"{{start}} {{end}} {n}\\n")
"""


def _start(tmp: Path, n: int, seconds: float, cores: int = 2) -> subprocess.Popen:
    code = HOLDER.format(repo=str(REPO), folder=str(tmp / "cores"), cores=cores, n=n,
                         seconds=seconds, log=str(tmp / "log.txt"))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def _intervals(tmp: Path) -> list[tuple[float, float, int]]:
    rows = (tmp / "log.txt").read_text().split("\n")
    return [(float(a), float(b), int(n)) for a, b, n in (r.split() for r in rows if r)]


def _most_at_once(intervals) -> int:
    """The largest number of cores held at one moment."""
    events = sorted([(a, n) for a, _b, n in intervals] + [(b, -n) for _a, b, n in intervals],
                    key=lambda e: (e[0], e[1]))  # a release before a take at the same time
    most = held = 0
    for _t, n in events:
        held += n
        most = max(most, held)
    return most


def test_do_jobs_of_several_processes_never_hold_more_cores_than_the_machine(tmp_path):
    procs = [_start(tmp_path, 2, 0.3) for _ in range(3)] + \
        [_start(tmp_path, 1, 0.3) for _ in range(4)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    intervals = _intervals(tmp_path)
    assert len(intervals) == 7
    assert _most_at_once(intervals) <= 2
    # the three jobs that need both cores ran one after another
    whole = sorted((a, b) for a, b, n in intervals if n == 2)
    assert all(b1 <= a2 for (_a1, b1), (a2, _b2) in zip(whole, whole[1:], strict=False))


def test_does_a_killed_process_give_its_cores_back(tmp_path):
    holder = _start(tmp_path, 2, 60)
    assert holder.stdout.readline().strip() == "held"
    waiter = _start(tmp_path, 2, 0.05)
    time.sleep(0.5)
    assert waiter.poll() is None            # waiting for the cores the holder has
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    assert waiter.wait(timeout=10) == 0     # the kernel dropped the dead holder's locks


def test_do_slots_take_the_machine_wide_cores_after_their_own(tmp_path):
    """A Dask worker's Slots: the in-process order first, then the machine's cores, held
    by another process here (a second worker process of the same machine)."""
    holder = _start(tmp_path, 2, 1.0)
    assert holder.stdout.readline().strip() == "held"
    slots = Slots(cores=2, host=HostCores(tmp_path / "cores", cores=2))
    start = time.monotonic()
    with slots.hold(2):
        waited = time.monotonic() - start
    assert holder.wait(timeout=10) == 0
    assert waited >= 0.5, waited   # it waited for the other process's job to end
    with slots.hold(1):            # and the cores are free again afterwards
        pass


def test_are_the_core_locks_kept_on_this_machine_not_in_the_shared_cache(tmp_path, monkeypatch):
    """A cluster's machines often share home folders (and so the reference runs' cache) over
    NFS, where a lock is seen by every machine: the core locks must live in this machine's
    own temporary folder, private to this user."""
    monkeypatch.setenv("CNN_AUTOGRADER_CACHE", str(tmp_path / "shared-home-cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "machine-tmp"))
    (tmp_path / "machine-tmp").mkdir()
    folder = machine_cores_folder()
    assert folder == tmp_path / "machine-tmp" / f"cnncourse-cores-{os.getuid()}"
    assert machine_cores_folder() == folder          # every process of this user: the same
    info = os.lstat(folder)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    assert not (tmp_path / "shared-home-cache").exists()


def test_is_a_planted_cores_folder_not_used(tmp_path, monkeypatch):
    """Another user (or a link) at the folder's name: the locks go to a private folder
    instead, never through the link."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    elsewhere = tmp_path / "someone-elses"
    elsewhere.mkdir()
    (tmp_path / f"cnncourse-cores-{os.getuid()}").symlink_to(elsewhere)
    folder = machine_cores_folder()
    assert folder.parent == tmp_path and folder.name.startswith("cnncourse-cores-")
    assert not folder.is_symlink() and folder.resolve() != elsewhere
    with HostCores(folder, cores=1).hold(1):
        pass
    assert not any(elsewhere.iterdir())
