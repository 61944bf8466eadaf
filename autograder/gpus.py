"""The GPUs of this machine and how training jobs are packed on them.

A training check of one submission is bound by the host, not the GPU (BENCHMARKS.md), so
several sandboxed jobs can share one GPU. ``plan_gpu_slots`` decides how many per GPU, from
the GPUs' memory and the host's cores (or ``--gpu-jobs N``), and gives each sandboxed
worker one slot: one device, by its UUID (the job's ``CUDA_VISIBLE_DEVICES``) and its
device node (the only ``/dev/nvidiaN`` its sandbox binds), and a share of its memory
(``torch.cuda.set_per_process_memory_fraction`` in the job). The device list is an input,
so the plan is tested on machines without a GPU; ``detect_gpus`` reads the real one.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GPUDevice", "GPUSlot", "detect_gpus", "plan_gpu_slots", "device_nodes",
           "parse_nvidia_information"]

log = logging.getLogger(__name__)
_PROC_GPUS = Path("/proc/driver/nvidia/gpus")
# the nodes every CUDA process needs besides its own device's
_CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                  "/dev/nvidia-modeset")
_MEMORY_HEADROOM = 0.95   # of a GPU's memory shared out; the rest stays for the driver


@dataclass(frozen=True)
class GPUDevice:
    index: int                 # CUDA's index for it in the grader's process
    uuid: str                  # "GPU-...": names it in CUDA_VISIBLE_DEVICES, in any order
    minor: int | None          # its node /dev/nvidia<minor>; None: not known (bind all)
    memory_bytes: int
    name: str = ""


@dataclass(frozen=True)
class GPUSlot:
    """One sandboxed worker's share of one GPU."""

    device: GPUDevice
    memory_bytes: int          # the job's cap (set_per_process_memory_fraction)
    sharing: int               # jobs packed on this GPU at once, this one included

    @property
    def memory_fraction(self) -> float:
        return self.memory_bytes / self.device.memory_bytes

    def env(self) -> dict[str, str]:
        """What the job's process needs to use this slot and nothing else."""
        return {"CUDA_VISIBLE_DEVICES": self.device.uuid,
                "CNN_GPU_MEMORY_BYTES": str(self.memory_bytes)}

    def to_dict(self) -> dict:
        return {"gpu": self.device.index, "uuid": self.device.uuid,
                "name": self.device.name, "memory_gib": round(self.memory_bytes / 2**30, 2),
                "sharing": self.sharing}


def plan_gpu_slots(devices: list[GPUDevice], cores: int, threads_per_job: int,
                   job_memory_bytes: int, gpu_jobs: int | None = None) -> list[GPUSlot]:
    """Slots for training jobs: ``gpu_jobs`` per GPU when given, else as many as the
    smallest GPU's memory holds at ``job_memory_bytes`` each and the host's cores can feed
    (each job holds ``threads_per_job`` cores while it runs), at least one per GPU. Slots
    alternate between GPUs, so the first jobs of a run spread over all of them."""
    if not devices:
        return []
    if gpu_jobs is not None:
        if gpu_jobs < 1:
            raise ValueError("--gpu-jobs must be at least 1")
        per_gpu = gpu_jobs
    else:
        smallest = min(d.memory_bytes for d in devices)
        by_memory = int(smallest * _MEMORY_HEADROOM // max(1, job_memory_bytes))
        by_cores = cores // (max(1, threads_per_job) * len(devices))
        per_gpu = max(1, min(by_memory, by_cores))
    slots = []
    for _ in range(per_gpu):
        for device in devices:
            share = int(device.memory_bytes * _MEMORY_HEADROOM / per_gpu)
            slots.append(GPUSlot(device, min(share, job_memory_bytes), per_gpu))
    return slots


def device_nodes(slot: GPUSlot | None, present: list[str]) -> tuple[str, ...]:
    """The device nodes a sandbox binds: its own GPU's and the control nodes; all of
    ``present`` when there is no slot or its node is not known."""
    if slot is None or slot.device.minor is None:
        return tuple(sorted(present))
    own = f"/dev/nvidia{slot.device.minor}"
    return tuple(n for n in sorted(present) if n == own or n in _CONTROL_NODES
                 or n.startswith("/dev/nvidia-caps"))


def parse_nvidia_information(text: str) -> tuple[str | None, int | None]:
    """(PCI bus location, device minor) from a /proc/driver/nvidia/gpus/*/information."""
    bus = re.search(r"^Bus Location:\s*(\S+)", text, re.M)
    minor = re.search(r"^Device Minor:\s*(\d+)", text, re.M)
    return (bus.group(1).lower() if bus else None, int(minor.group(1)) if minor else None)


def _minors_by_bus() -> dict[str, int]:
    found = {}
    for info in _PROC_GPUS.glob("*/information"):
        try:
            bus, minor = parse_nvidia_information(info.read_text())
        except OSError:
            continue
        if bus is not None and minor is not None:
            found[bus] = minor
    return found


def _bus_id(props) -> str:
    return (f"{getattr(props, 'pci_domain_id', 0):04x}:{getattr(props, 'pci_bus_id', 0):02x}:"
            f"{getattr(props, 'pci_device_id', 0):02x}.0")


def detect_gpus() -> list[GPUDevice]:
    """The CUDA devices this process sees, with their node minors where the driver says."""
    import torch

    if not torch.cuda.is_available():
        return []
    minors = _minors_by_bus()
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        uuid = str(getattr(props, "uuid", "") or "")
        uuid = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}" if uuid else str(index)
        devices.append(GPUDevice(index, uuid, minors.get(_bus_id(props)),
                                 int(props.total_memory), props.name))
    if devices and any(d.minor is None for d in devices):
        log.warning("could not match every GPU to its /dev/nvidia node; sandboxes bind all")
    return devices
