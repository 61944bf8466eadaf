"""Are training jobs packed on the GPUs as planned, each sandbox bound to its own device?

The device list is an input to the plan, so these run on machines without a GPU: a fake
machine with four 80 GiB GPUs, and the device nodes its driver would show. What only a GPU
can show (several packed jobs really training at once, each under its memory cap) is in
bench/device_run.sh.
"""
from __future__ import annotations

import pytest

from autograder.assignments import get_assignment
from autograder.executors.local import plan_gpus
from autograder.gpus import (
    GPUDevice,
    GPUSlot,
    device_nodes,
    parse_nvidia_information,
    plan_gpu_slots,
)
from autograder.jobs import RunSettings
from autograder.sandbox import launch

GIB = 2**30
FOUR = [GPUDevice(i, f"GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd", minor=i,
                  memory_bytes=80 * GIB, name="H100") for i in range(4)]
NODES = [*(f"/dev/nvidia{i}" for i in range(4)), "/dev/nvidiactl", "/dev/nvidia-uvm",
         "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset", "/dev/nvidia-caps/nvidia-cap1"]


def test_does_the_plan_follow_the_cores_when_memory_is_plenty():
    slots = plan_gpu_slots(FOUR, cores=16, threads_per_job=2, job_memory_bytes=8 * GIB)
    assert len(slots) == 8 and {s.sharing for s in slots} == {2}
    assert sorted(s.device.index for s in slots) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [s.device.index for s in slots[:4]] == [0, 1, 2, 3]  # the first jobs spread out
    assert all(s.memory_bytes == 8 * GIB for s in slots)


def test_does_the_plan_follow_the_memory_when_cores_are_plenty():
    small = [GPUDevice(i, f"GPU-{i}", i, 16 * GIB) for i in range(2)]
    slots = plan_gpu_slots(small, cores=64, threads_per_job=2, job_memory_bytes=8 * GIB)
    assert len(slots) == 2 and {s.sharing for s in slots} == {1}  # 15.2 GiB hold one


def test_does_gpu_jobs_set_the_number_per_gpu_and_split_the_memory():
    slots = plan_gpu_slots(FOUR, cores=2, threads_per_job=2, job_memory_bytes=40 * GIB,
                           gpu_jobs=3)
    assert len(slots) == 12 and {s.sharing for s in slots} == {3}
    assert all(s.memory_fraction * 3 <= 0.95 + 1e-9 for s in slots)
    with pytest.raises(ValueError):
        plan_gpu_slots(FOUR, 16, 2, GIB, gpu_jobs=0)


def test_is_there_no_plan_without_a_gpu():
    assert plan_gpu_slots([], cores=16, threads_per_job=2, job_memory_bytes=GIB) == []


def test_does_each_slot_bind_only_its_own_device_node():
    slot = GPUSlot(FOUR[2], 8 * GIB, 2)
    nodes = device_nodes(slot, NODES)
    assert "/dev/nvidia2" in nodes and "/dev/nvidiactl" in nodes
    assert not {"/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia3"} & set(nodes)
    unknown = GPUSlot(GPUDevice(0, "GPU-x", None, 80 * GIB), GIB, 1)
    assert device_nodes(unknown, NODES) == tuple(sorted(NODES))  # cannot tell: all, noted


def test_does_the_bwrap_sandbox_of_a_slot_see_one_gpu(monkeypatch):
    monkeypatch.setattr(launch.glob, "glob", lambda pattern: list(NODES)
                        if pattern == "/dev/nvidia*" else [])
    argv = launch.plan_launch("bwrap", 0, [], gpu=GPUSlot(FOUR[1], 8 * GIB, 2)).argv
    bound = [argv[i + 1] for i, a in enumerate(argv) if a == "--dev-bind"]
    assert "/dev/nvidia1" in bound and "/dev/nvidiactl" in bound
    assert not {"/dev/nvidia0", "/dev/nvidia2", "/dev/nvidia3"} & set(bound)
    everything = launch.plan_launch("bwrap", 0, [], gpu=True).argv  # no plan: every GPU
    assert {"/dev/nvidia0", "/dev/nvidia3"} <= {everything[i + 1] for i, a in
                                                enumerate(everything) if a == "--dev-bind"}


def test_does_a_job_on_a_slot_name_its_device_and_its_share():
    slot = GPUSlot(FOUR[3], 12 * GIB, 4)
    assert slot.env() == {"CUDA_VISIBLE_DEVICES": FOUR[3].uuid,
                          "CNN_GPU_MEMORY_BYTES": str(12 * GIB)}
    assert slot.to_dict()["sharing"] == 4


def test_does_the_training_part_get_slots_on_the_gpu_profile_only():
    parts = get_assignment("assignment1").parts
    on_gpu = plan_gpus(parts, RunSettings("full", "cuda"), None, devices=FOUR)
    assert on_gpu and {s.memory_bytes for s in on_gpu} == {8 * GIB}  # the GPU profile's cap
    assert plan_gpus(parts, RunSettings("full", "cpu"), None, devices=FOUR) == ()
    assert plan_gpus(parts, RunSettings("quick", "cuda"), None, devices=FOUR) == ()


def test_are_device_minors_read_from_the_driver():
    text = ("Model: \t\t NVIDIA H200\nIRQ:   \t\t 123\nGPU UUID: \t GPU-1234\n"
            "Bus Location: \t 0000:18:00.0\nDevice Minor: \t 2\n")
    assert parse_nvidia_information(text) == ("0000:18:00.0", 2)
    assert parse_nvidia_information("nothing here") == (None, None)


def test_does_a_dask_worker_plan_no_more_slots_than_its_threads():
    """A Dask worker runs as many jobs at once as it has threads: its plan is made for that
    many, so each slot's memory share and time allowance count only jobs that run."""
    parts = get_assignment("assignment1").parts
    settings = RunSettings("full", "cuda")
    one_gpu = FOUR[:1]   # a worker started with CUDA_VISIBLE_DEVICES naming one GPU
    assert [s.sharing for s in plan_gpus(parts, settings, 8, devices=one_gpu)] == [8] * 8
    capped = plan_gpus(parts, settings, 8, devices=one_gpu, max_jobs=2)
    assert [(s.device.uuid, s.sharing) for s in capped] == [(FOUR[0].uuid, 2)] * 2
    four = plan_gpus(parts, settings, 3, devices=FOUR, max_jobs=4)
    assert sorted(s.device.index for s in four) == [0, 1, 2, 3]   # one per GPU
    assert {s.sharing for s in four} == {1}
    assert len(plan_gpus(parts, settings, 1, devices=FOUR, max_jobs=1)) == 4  # at least 1 each
