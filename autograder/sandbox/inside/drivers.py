"""What the worker's child does with a submission: run its cells, call what they define.

Each driver gets the namespace the answer cells filled, the job (plain JSON from the
grader) and its data blocks, and reports through ``emit`` in plain data only: JSON headers
and raw array bytes. Nothing here judges correctness; the grader does that in its own
process. Runs inside the sandbox, loaded by file path next to ``wire.py``.
"""
from __future__ import annotations

import json
import time
import traceback

if __package__:
    from . import provenance, wire
else:
    import provenance
    import wire

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["DRIVERS", "run_cell", "warm_up"]

# Captured before any student code runs, so rebinding torch.Tensor later changes nothing here.
_Tensor = torch.Tensor
_Module = nn.Module
_origin_problem = provenance.origin_problem
_TORCH_DTYPES = {"<f2": torch.float16, "<f4": torch.float32, "<f8": torch.float64,
                 "<i1": torch.int8, "<i2": torch.int16, "<i4": torch.int32, "<i8": torch.int64,
                 "|u1": torch.uint8, "|b1": torch.bool}


def _error(exc: BaseException) -> dict:
    """Exception type, message and the last line of student code it passed through."""
    where = None
    try:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.startswith("<cell "):
                where = {"cell": frame.filename[6:-1], "line": frame.lineno,
                         "function": frame.name}
    except BaseException:  # noqa: BLE001
        pass
    return {"type": type(exc).__name__, "message": wire.cap_text(exc), "where": where}


def run_cell(cell: dict, namespace: dict) -> tuple[dict, object]:
    """Execute one cell's source in the shared namespace; report success or the error,
    and return the compiled code (None when it did not compile)."""
    code = None
    try:
        code = compile(cell["source"], f"<cell {cell['label']}>", "exec")
        exec(code, namespace)  # noqa: S102 - this is the sandboxed worker's purpose
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too
        return {"ok": False, "error": _error(exc)}, code
    return {"ok": True}, code


def _tensor(desc: dict, blobs: list[bytes]) -> torch.Tensor:
    data = bytearray(blobs[desc["blob"]])
    dtype = _TORCH_DTYPES[desc["dtype"]]
    if not data:
        return torch.zeros(desc["shape"], dtype=dtype)
    return torch.frombuffer(data, dtype=dtype).reshape(desc["shape"]).clone()


def _argument(spec: dict, blobs: list[bytes]):
    if "array" in spec:
        return _tensor(spec["array"], blobs)
    if "tuple" in spec:
        return tuple(spec["tuple"])
    return spec["value"]


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', '?')}"


def describe(value: object, blobs: list[bytes]) -> dict:
    """A returned value as plain data; only an exact torch.Tensor carries its numbers."""
    if type(value) is not _Tensor:
        return {"kind": "other", "type": _type_name(value),
                "tensor_subclass": isinstance(value, _Tensor)}
    t = _Tensor.detach(value)
    info = {"kind": "tensor", "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape), "array": None}
    if t.dtype in _TORCH_DTYPES.values():
        info["array"] = wire.pack_array(_Tensor.numpy(_Tensor.contiguous(_Tensor.cpu(t))), blobs)
    return info


class _OpRecorder(TorchFunctionMode):
    """Notes every torch function called whose name contains one of ``patterns``.

    A torch-function mode sees each call into torch's Python API, including calls reached
    through ``getattr``, ``nn.Conv2d`` or ``torch.ops.aten``.
    """

    def __init__(self, patterns: list[str]):
        super().__init__()
        self.patterns, self.seen = patterns, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", None) or str(func)
        if any(p in name for p in self.patterns) and name not in self.seen:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def warm_up() -> None:
    """Pay once, in the server, whatever torch's first function mode sets up."""
    with _OpRecorder(["conv"]):
        torch.zeros(2) + 1


def _lookup(namespace: dict, name: str, emit, tree: frozenset) -> object | None:
    """The graded object, if the answer cells define it themselves; else None, reported."""
    if name not in namespace:
        emit({"op": "missing", "name": name})
        return None
    obj = namespace[name]
    where = _origin_problem(obj, tree, (_Module,))
    if where is not None:
        emit({"op": "origin", "name": name, "from": where})
        return None
    return obj


def call(namespace: dict, job: dict, blobs: list[bytes], emit,
         tree: frozenset = frozenset()) -> None:
    """Call the named function once per probe; report each output or error."""
    fn = _lookup(namespace, job["object"], emit, tree)
    if fn is None:
        return
    for probe in job["probes"]:
        out_blobs: list[bytes] = []
        recorder = _OpRecorder(job.get("forbidden_ops", []))
        start = time.perf_counter()
        try:
            args = [_argument(a, blobs) for a in probe["args"]]
            kwargs = {k: _argument(v, blobs) for k, v in probe.get("kwargs", {}).items()}
            with recorder:
                value = fn(*args, **kwargs)
            report = {"ok": True, "value": describe(value, out_blobs)}
        except BaseException as exc:  # noqa: BLE001
            report = {"ok": False, "error": _error(exc)}
        emit({"op": "probe", "id": probe["id"], "ops": recorder.seen,
              "seconds": round(time.perf_counter() - start, 5), **report}, out_blobs)


def _attribute(module: object, path: str):
    for part in path.split("."):
        module = getattr(module, part)
    return module


def _load(block: object, weights: dict, blobs: list[bytes]) -> list[str]:
    """Copy the reference weights into the block by attribute name; returns what failed."""
    problems = []
    with torch.no_grad():
        for name, desc in weights.items():
            try:
                target = _attribute(block, name)
            except BaseException as exc:  # noqa: BLE001
                problems.append(f"{name}: {type(exc).__name__}")
                continue
            source = _tensor(desc, blobs)
            if not isinstance(target, _Tensor):
                problems.append(f"{name}: is {_type_name(target)}, not a tensor")
            elif tuple(target.shape) != tuple(source.shape):
                problems.append(f"{name}: shape {tuple(target.shape)}, expected "
                                f"{tuple(source.shape)}")
            else:
                target.copy_(source.to(target.dtype))
    return problems


def _class_facts(cls: object) -> dict:
    is_module = isinstance(cls, type) and issubclass(cls, _Module)
    facts = {"is_module_class": is_module, "forward_defined": False,
             "forward_nested_in_init": False}
    if is_module:
        facts["forward_defined"] = cls.forward is not _Module.forward
        init = getattr(cls, "__init__", None)
        consts = getattr(getattr(init, "__code__", None), "co_consts", ())
        facts["forward_nested_in_init"] = any(
            getattr(c, "co_name", None) == "forward" for c in consts)
    return facts


def _grad_facts(block: object) -> list[dict]:
    facts = []
    for name, p in block.named_parameters():
        grad = p.grad
        facts.append({"name": name, "has_grad": grad is not None,
                      "finite": bool(grad is not None and torch.isfinite(grad).all()),
                      "nonzero": bool(grad is not None and grad.abs().sum() > 0)})
    return facts


def residual(namespace: dict, job: dict, blobs: list[bytes], emit,
             tree: frozenset = frozenset()) -> None:
    """Build the block for each configuration and report shapes, parameters, outputs, grads."""
    cls = _lookup(namespace, job["object"], emit, tree)
    if cls is None:
        return
    emit({"op": "class", **_class_facts(cls)})
    for config in job["configs"]:
        report: dict = {"op": "config", "id": config["id"], "errors": {}}
        out_blobs: list[bytes] = []
        X = _tensor(config["input"], blobs)
        steps = iter(("construct", "first_forward", "load", "eval_forward", "train_forward",
                      "backward"))
        step = next(steps)
        try:
            block = cls(*config["args"], **config["kwargs"])
            report["attributes"] = {
                name: ("missing" if not hasattr(block, name) else
                       None if getattr(block, name) is None else _type_name(getattr(block, name)))
                for name in ("conv1", "conv2", "conv3", "bn1", "bn2")}
            step = next(steps)
            block.train()
            report["first"] = describe(block(X), [])  # creates lazy weights; no numbers kept
            report["first"]["array"] = None
            report["parameters"] = [[n, p.numel()] for n, p in block.named_parameters()]
            step = next(steps)
            report["load_problems"] = _load(block, config["weights"], blobs)
            if report["load_problems"]:
                raise LookupError("the reference weights do not fit this block")
            step = next(steps)
            block.eval()
            with torch.no_grad():
                report["eval"] = describe(block(X), out_blobs)
            step = next(steps)
            _load(block, config["weights"], blobs)  # undo running-stat updates
            block.train()
            out = block(X)
            report["train"] = describe(out, out_blobs)
            step = next(steps)
            (out * _tensor(config["grad_weights"], blobs)).sum().backward()
            report["grads"] = _grad_facts(block)
        except BaseException as exc:  # noqa: BLE001
            report["errors"][step] = _error(exc)
        emit(report, out_blobs)


def plain_data(namespace: dict, job: dict, blobs: list[bytes], emit,
               tree: frozenset = frozenset()) -> None:
    """Hand the student's object to a grader-supplied module's function; report its numbers.

    For parts that train or measure: ``job["module"]`` is a file bound next to this one
    (e.g. ``training``); ``job["function"]`` is called as ``function(obj, profile,
    **job["kwargs"])`` and returns JSON data (dicts, lists, numbers, strings), which the
    grader validates.
    """
    import importlib

    obj = _lookup(namespace, job["object"], emit, tree)
    if obj is None:
        return
    start = time.perf_counter()
    arrays: dict = {}
    try:
        module = importlib.import_module(job["module"])
        data = getattr(module, job["function"])(obj, job["profile"], **job.get("kwargs", {}))
        if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], dict):
            data, arrays = data  # JSON data plus named tensors (e.g. trained weights)
        report = {"ok": True, "data": data}
    except BaseException as exc:  # noqa: BLE001
        report = {"ok": False, "error": _error(exc)}
    try:
        json.dumps(report, allow_nan=False)  # numbers, strings, lists and dicts only
    except (TypeError, ValueError) as exc:
        report = {"ok": False, "error": {"type": "TypeError", "where": None,
                                         "message": f"the result is not plain JSON data: {exc}"}}
    out_blobs: list[bytes] = []
    described = {}
    if report["ok"]:
        for name, value in arrays.items():
            if isinstance(name, str) and type(value) is _Tensor:
                info = describe(value, out_blobs)
                if info.get("array") is not None:
                    described[name] = info["array"]
    emit({"op": "data", "seconds": round(time.perf_counter() - start, 3), **report,
          "arrays": described}, out_blobs)


DRIVERS = {"call": call, "residual": residual, "plain_data": plain_data}
