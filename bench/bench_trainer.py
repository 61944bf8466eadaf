"""Fast trainer vs d2l.Trainer, side by side in one run, on whatever device is present.

    python bench/bench_trainer.py --epochs 10 --d2l-epochs 1          # a GPU lease
    python bench/bench_trainer.py --quick                              # CI-sized, 2 CPU cores
    python bench/bench_trainer.py --epochs 10 --graph both --skip-d2l  # eager vs CUDA graph

For each model both trainers train the same architecture on Fashion-MNIST: d2l.Trainer with
d2l.FashionMNIST and d2l's published settings (the baseline a reader of d2l gets), and the
course's Trainer with its own settings. Seconds per epoch are steady-state means (the fast
trainer's one-off set-up, i.e. resizing the data once and any compilation, is its own column).
`speedup_vs_d2l` = d2l s/epoch / fast s/epoch, both measured in this run. On CUDA the
fast trainer captures its step as a CUDA graph unless ``--graph off``; ``--graph both`` runs
it both ways, and the trainer column says which ran ("fast+graph" only when the capture
held, "fast" for eager).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnncourse.data import FashionMNIST, find_raw_folder  # noqa: E402
from cnncourse.models import VGG, VGG_SMALL_ARCH, LeNet, ResNet18  # noqa: E402
from cnncourse.trainer import Trainer  # noqa: E402


@dataclass(frozen=True)
class Spec:
    """One model: the course's settings and d2l's (batch size, learning rate, init)."""
    name: str
    make: type
    resize: int
    batch_size: int        # the fast trainer's
    d2l_lr: float
    d2l_xavier: bool       # d2l applies init_cnn to LeNet and VGG, not ResNet
    quick_train: int       # training examples in --quick mode (CPU CI)
    quick_val: int         # validation examples in --quick mode


SPECS = {
    "lenet": Spec("LeNet", LeNet, 28, 256, 0.1, True, 60000, 10000),
    "vgg": Spec("VGG-small", lambda **kw: VGG(arch=VGG_SMALL_ARCH, **kw), 224, 128, 0.01, True,
                256, 128),
    "resnet": Spec("ResNet-18", ResNet18, 96, 256, 0.01, False, 512, 256),
}
D2L_BATCH = 128  # d2l trains all three with batch size 128


@dataclass
class Row:
    model: str
    trainer: str
    epochs: int
    num_train: int
    s_per_epoch: float
    examples_per_s: float
    val_acc: float
    setup_s: float
    speedup_vs_d2l: float | None = None


def run_fast(spec: Spec, epochs: int, num_train: int | None, num_val: int | None,
             device: str, compile: bool, graph: bool = True) -> Row:
    data = FashionMNIST(batch_size=spec.batch_size, resize=(spec.resize, spec.resize),
                        num_train=num_train, num_val=num_val)
    torch.manual_seed(0)
    model = spec.make()
    trainer = Trainer(max_epochs=epochs, device=device, compile=compile, plot=False,
                      progress=False, cuda_graph=graph)
    history = trainer.fit(model, data)
    # steady state: leave out the first epoch when there are several (warm-up, autotuning)
    steady = history.epoch_seconds[1:] or history.epoch_seconds
    s = sum(steady) / len(steady)
    first_extra = history.epoch_seconds[0] - s if len(history.epoch_seconds) > 1 else 0.0
    name = "fast" + ("+compile" if compile else "") + (
        "+graph" if history.step_mode == "cuda graph" else "")
    return Row(spec.name, name, history.epochs,
               history.num_train, s, history.num_train / s, history.val_acc[-1],
               history.setup_seconds + max(0.0, first_extra))


@contextlib.contextmanager
def _d2l_root(root: Path):
    # d2l.DataModule hard-codes root='../data'; point it at the course's data root instead.
    from d2l import torch as d2l

    old = d2l.DataModule.__init__.__defaults__
    d2l.DataModule.__init__.__defaults__ = (str(root), old[1])
    try:
        yield
    finally:
        d2l.DataModule.__init__.__defaults__ = old


def run_d2l(spec: Spec, epochs: int, num_train: int | None, num_val: int | None,
            device: str) -> Row:
    import matplotlib

    matplotlib.use("Agg")
    from d2l import torch as d2l

    root = find_raw_folder().parent.parent
    with _d2l_root(root):
        data = d2l.FashionMNIST(batch_size=D2L_BATCH, resize=(spec.resize, spec.resize))
    if num_train:
        data.train = torch.utils.data.Subset(data.train, range(num_train))
    if num_val:
        data.val = torch.utils.data.Subset(data.val, range(num_val))

    class Baseline(d2l.Classifier):
        def __init__(self, net, lr):
            super().__init__()
            self.save_hyperparameters()

    torch.manual_seed(0)
    ours = spec.make()
    ours.forward(torch.zeros(2, 1, spec.resize, spec.resize))  # build lazy layers
    model = Baseline(ours.net, spec.d2l_lr)
    if spec.d2l_xavier:
        model.net.apply(d2l.init_cnn)
    trainer = d2l.Trainer(max_epochs=epochs, num_gpus=1 if device == "cuda" else 0)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # d2l prints a figure repr per redraw
        trainer.fit(model, data)
    if device == "cuda":
        torch.cuda.synchronize()
    s = (time.perf_counter() - start) / epochs
    n = len(data.train)
    val_acc = float(model.board.data["val_acc"][-1].y)
    return Row(spec.name, "d2l", epochs, n, s, n / s, val_acc, 0.0)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return (f"CPU {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
            f"torch threads {torch.get_num_threads()}")


def print_table(rows: list[Row]) -> None:
    head = f"{'model':<10} {'trainer':<18} {'epochs':>6} {'train n':>8} {'s/epoch':>8} " \
           f"{'examples/s':>11} {'val_acc':>7} {'setup_s':>7} {'speedup_vs_d2l':>14}"
    print(head)
    print("-" * len(head))
    for r in rows:
        speed = f"{r.speedup_vs_d2l:.1f}x" if r.speedup_vs_d2l else "-"
        print(f"{r.model:<10} {r.trainer:<18} {r.epochs:>6} {r.num_train:>8} {r.s_per_epoch:>8.2f} "
              f"{r.examples_per_s:>11,.0f} {r.val_acc:>7.3f} {r.setup_s:>7.1f} {speed:>14}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=1, help="epochs for the fast trainer")
    p.add_argument("--d2l-epochs", type=int, default=None,
                   help="epochs for d2l (default: --epochs)")
    p.add_argument("--models", default="lenet,vgg,resnet")
    p.add_argument("--quick", action="store_true",
                   help="CI-sized: full LeNet epochs, a few hundred examples for VGG/ResNet; "
                        "d2l trains one epoch, the fast trainer two (the second is timed)")
    p.add_argument("--compile", choices=["off", "on", "both"], default="off")
    p.add_argument("--compile-models", default=None,
                   help="apply --compile only to these models (default: all in --models)")
    p.add_argument("--graph", choices=["off", "on", "both"], default="on",
                   help="on CUDA: capture the training step as a CUDA graph (default on)")
    p.add_argument("--skip-d2l", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    os.environ.pop("CNN_QUICK", None)  # the benchmark sizes its own runs
    d2l_epochs = args.d2l_epochs or (1 if args.quick else args.epochs)
    if args.quick and args.epochs == 1:
        args.epochs = 2  # the fast trainer's steady state is its second epoch
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  device: {device_name(args.device)}  "
          f"torch {torch.__version__}", flush=True)
    rows: list[Row] = []
    for key in args.models.split(","):
        spec = SPECS[key]
        n, n_val = (spec.quick_train, spec.quick_val) if args.quick else (None, None)
        base = None
        if not args.skip_d2l:
            base = _attempt(run_d2l, spec, d2l_epochs, n, n_val, args.device)
            if base:
                rows.append(base)
        mode = args.compile
        if args.compile_models is not None and key not in args.compile_models.split(","):
            mode = "off"
        modes = {"off": [False], "on": [True], "both": [False, True]}[mode]
        graphs = {"off": [False], "on": [True], "both": [False, True]}[args.graph]
        for compiled, graph in [(c, g) for c in modes for g in (graphs if not c else [False])]:
            row = _attempt(run_fast, spec, args.epochs, n, n_val, args.device, compiled, graph)
            if row is None:
                continue
            if base:
                row.speedup_vs_d2l = base.s_per_epoch / row.s_per_epoch
            rows.append(row)
        print_table([r for r in rows if r.model == spec.name])
        print(flush=True)
        if args.json:  # after every model, so a run cut short keeps what it measured
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"device": device_name(args.device),
                                             "torch": torch.__version__,
                                             "date": time.strftime("%Y-%m-%d"),
                                             "argv": sys.argv[1:],
                                             "rows": [asdict(r) for r in rows]}, indent=1))
    print("## all models")
    print_table(rows)
    return 0


def _attempt(fn, *args):
    # one failed configuration (e.g. a compiler error) must not lose the other rows
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - reported, and the other rows go on
        print(f"!! {fn.__name__}{args[1:]} failed: {type(exc).__name__}: {exc}"[:500], flush=True)
        return None


if __name__ == "__main__":
    sys.exit(main())
