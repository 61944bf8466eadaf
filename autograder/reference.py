"""The reference run of the training check: the course's own ``Residual`` trained under a
profile on this machine, once per (profile, device, torch version and, on a GPU, whether
the step is captured as a CUDA graph: ``$CNN_CUDA_GRAPH``), cached as JSON.

It runs in a separate process (``python -m autograder.reference PROFILE_JSON``) with the
same ``train_resnet`` the sandbox runs on students' blocks, so the grader never holds the
GPU memory that training takes. Its time sets the students' time limit.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from cnncourse.config import GRAPH_ENV

from .errors import SetupError
from .sandbox.inside.training import Profile, train_resnet

__all__ = ["reference_result"]

log = logging.getLogger(__name__)
_TIMEOUT_S = 600.0  # the reference run itself; the CPU profile's takes about 30 s on 2 cores


def _cache_key(profile: Profile, device_name: str, torch_version: str,
               graph: bool = False) -> str:
    extra = ["cuda graph"] if graph else []  # eager keys stay as they were
    blob = json.dumps([asdict(profile), device_name, torch_version, *extra], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reference_result(profile: Profile, cache_dir: str | os.PathLike,
                     timeout: float = _TIMEOUT_S, cuda_graph: bool | None = None) -> dict:
    """The reference Residual's result under ``profile`` on this machine, cached on disk.
    ``cuda_graph``: whether a CUDA run captures its step (None: ``$CNN_CUDA_GRAPH`` here)."""
    import torch

    from cnncourse.config import cuda_graph_requested

    device_name = (torch.cuda.get_device_name(0) if profile.device == "cuda"
                   else f"cpu-{os.cpu_count()}")
    graph = profile.device == "cuda" and (cuda_graph_requested() if cuda_graph is None
                                          else cuda_graph)
    key = _cache_key(profile, device_name, torch.__version__, graph)
    cache = Path(cache_dir) / f"reference-{profile.name}-{key}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    # one run per machine: grading processes that share the cache (the Dask workers of one
    # machine) wait here for the first one's run instead of training the same block again
    with open(cache.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.is_file():
            log.info("reference run for the %s profile read from the cache %s", profile.name,
                     cache)
            return json.loads(cache.read_text())
        return _train_reference(profile, device_name, cache, timeout, graph)


def _train_reference(profile: Profile, device_name: str, cache: Path, timeout: float,
                     graph: bool) -> dict:
    log.info("training the reference block under the %s profile (%s)", profile.name,
             device_name)
    proc = subprocess.run([sys.executable, "-m", "autograder.reference",
                           json.dumps(asdict(profile))],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent,
                          env={**os.environ, GRAPH_ENV: "1" if graph else "0"})
    if proc.returncode != 0:
        raise SetupError(f"the reference training run failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["status"] != "ok":
        raise SetupError(f"the reference training run did not finish cleanly: "
                         f"{result['status']}: {result['message']}")
    result["device_name"] = device_name
    log.info("reference run: validation accuracy %.3f in %.1f s", result["val_acc"],
             result["seconds"])
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(cache)
    return result


def main(argv: list[str]) -> int:
    """``python -m autograder.reference PROFILE_JSON``: train the reference block, print
    its result as one line of JSON."""
    if len(argv) != 1:
        print("usage: python -m autograder.reference PROFILE_JSON", file=sys.stderr)
        return 2
    from cnncourse.models import Residual

    profile = Profile(**json.loads(argv[0]))
    # the reference is never cut short: its time sets the students' limit
    print(json.dumps(train_resnet(Residual, profile, time_limit=1e9)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
