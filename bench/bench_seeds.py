"""How much a chapter's stored accuracy depends on its seed: each chapter's full training
recipe run with several seeds, in one process, on whatever device is present.

    python bench/bench_seeds.py --models lenet,lenet-relu --seeds 0,1,2     # 2 CPU cores
    python bench/bench_seeds.py --models resnet,vgg --seeds 0,1,2           # a GPU lease

Each recipe is the chapter's own: the same model class and settings, the same data (batch
size, resize), ``Trainer(max_epochs=10, seed=s)``; seed 0 is the run stored in the chapter
(the trainer seeds the weights and the batch order from it). The table gives each seed's
final validation accuracy (on all 10,000 validation images) and, per model, the mean, the
spread (max - min) and the sample standard deviation. ``--epochs`` and ``--num-train``
shrink a run for a dry run; such rows say so and are not the chapters' recipe.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import SPECS  # noqa: E402  (each chapter's model, batch size and resize)

from cnncourse.data import FashionMNIST  # noqa: E402
from cnncourse.models import LeNet, modernize  # noqa: E402
from cnncourse.trainer import Trainer  # noqa: E402

# name: (label, chapter, bench_trainer's spec: the model, batch size and resize)
RECIPES = {
    "lenet": ("LeNet (sigmoid, average pooling)", "6", SPECS["lenet"]),
    "lenet-relu": ("LeNet (ReLU, max pooling)", "6",
                   replace(SPECS["lenet"], make=lambda: modernize(LeNet()))),
    "vgg": ("VGG-small", "7", SPECS["vgg"]),
    "resnet": ("ResNet-18", "8", SPECS["resnet"]),
}


@dataclass
class Row:
    model: str
    chapter: str
    seed: int
    epochs: int
    num_train: int
    val_acc: float
    wall_s: float
    step_mode: str
    recipe: bool  # the chapter's full recipe (all data, 10 epochs)


def run(name: str, seed: int, epochs: int, num_train: int | None, device: str | None) -> Row:
    label, chapter, spec = RECIPES[name]
    data = FashionMNIST(batch_size=spec.batch_size, resize=(spec.resize, spec.resize),
                        num_train=num_train)
    model = spec.make()
    trainer = Trainer(max_epochs=epochs, seed=seed, device=device, plot=False, progress=False)
    start = time.perf_counter()
    history = trainer.fit(model, data)
    wall = time.perf_counter() - start
    return Row(label, chapter, seed, history.epochs, history.num_train, history.val_acc[-1],
               wall, history.step_mode, epochs == 10 and num_train is None)


def summary(rows: list[Row]) -> list[str]:
    lines = ["| model | chapter | seeds | val_acc per seed | mean | spread (max-min) | sd |",
             "|---|---|---|---|---:|---:|---:|"]
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        accs = [r.val_acc for r in mine]
        sd = f"{statistics.stdev(accs):.4f}" if len(accs) > 1 else "-"
        note = "" if all(r.recipe for r in mine) else " (NOT the chapter's recipe)"
        lines.append(f"| {model}{note} | {mine[0].chapter} | "
                     f"{', '.join(str(r.seed) for r in mine)} | "
                     f"{', '.join(f'{a:.4f}' for a in accs)} | {statistics.mean(accs):.4f} | "
                     f"{max(accs) - min(accs):.4f} | {sd} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lenet,lenet-relu",
                        help=f"comma-separated, from {', '.join(RECIPES)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--num-train", type=int, default=None,
                        help="fewer training images (a dry run, not the recipe)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in RECIPES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    where = (torch.cuda.get_device_name() if device == "cuda" else
             f"CPU {platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  device: {where}  torch {torch.__version__}",
          flush=True)
    rows: list[Row] = []
    for name in models:
        for seed in seeds:
            row = run(name, seed, args.epochs, args.num_train, device)
            rows.append(row)
            print(f"{row.model:<34} seed {seed}: val acc {row.val_acc:.4f} after "
                  f"{row.epochs} epochs on {row.num_train:,} images, {row.wall_s:.0f} s "
                  f"({row.step_mode})", flush=True)
    print()
    print("\n".join(summary(rows)))
    if args.json:
        args.json.write_text(json.dumps({"device": where, "torch": torch.__version__,
                                         "rows": [asdict(r) for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
