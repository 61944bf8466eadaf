"""Draw the static diagrams of chapters 6-8 (LeNet, VGG, ResNet) as SVG files in this folder.

Run from anywhere: ``python book/figures/make_figures_ch06_08.py``. The output is
deterministic (fixed SVG ids, no date), so re-running only rewrites a file's bytes when its
drawing changed. Shapes in the diagrams are the ones the chapters print.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

HERE = Path(__file__).resolve().parent
# the same palette as chapters 1-5: blue for data, orange for kernels/operations, green results
INPUT, KERNEL, OUTPUT = "#dbe9f6", "#fde3c8", "#d9ead3"
DENSE, NORM, POOL = "#e4dcf0", "#fff2cc", "#f4cccc"
HIGHLIGHT, EDGE, TEXT = "#e69138", "#555555", "#222222"


def _canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    """A blank axes in data units with y growing upwards and equal scales."""
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _save(fig, name: str) -> None:
    fig.savefig(HERE / name, bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)


def _text(ax, x: float, y: float, text: str, size: float = 9, **kw) -> None:
    ax.text(x, y, text, ha=kw.pop("ha", "center"), va=kw.pop("va", "center"), fontsize=size,
            color=kw.pop("color", TEXT), **kw)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], color: str = EDGE,
           lw: float = 1.3, style: str = "-|>", **kw) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=color,
                                 lw=lw, shrinkA=0, shrinkB=0, **kw))


def _box(ax, xc: float, yc: float, w: float, h: float, text: str, fill: str,
         size: float = 9) -> None:
    """A rounded box centred at (xc, yc) with centred text."""
    ax.add_patch(FancyBboxPatch((xc - w / 2, yc - h / 2), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.15",
                                facecolor=fill, edgecolor=EDGE, lw=1))
    _text(ax, xc, yc, text, size=size)


def _stack(ax, x: float, yc: float, side: float, count: int, fill: str,
           offset: float) -> tuple[float, float]:
    """``count`` square feature maps drawn back to front; returns the stack's right and top."""
    for i in reversed(range(count)):
        ax.add_patch(Rectangle((x + i * offset, yc - side / 2 + i * offset), side, side,
                               facecolor=fill, edgecolor=EDGE, lw=0.7))
    return x + (count - 1) * offset + side, yc + side / 2 + (count - 1) * offset


# Chapter 6 ---------------------------------------------------------------------------------

def fig_lenet() -> None:
    """LeNet as feature-map stacks (to scale) followed by the dense layers."""
    fig, ax = _canvas(12.0, 3.4, (-1, 170), (-9, 26))
    scale, yc, gap = 0.45, 8.0, 17.0
    maps = [  # (count, side in pixels, fill, label, operation that produces the next stack)
        (1, 28, INPUT, "input\n1 × 28 × 28", "5×5 conv\npad 2\nsigmoid"),
        (6, 28, OUTPUT, "6 × 28 × 28", "2×2 avg\npool\nstride 2"),
        (6, 14, OUTPUT, "6 × 14 × 14", "5×5 conv\nsigmoid"),
        (16, 10, OUTPUT, "16 × 10 × 10", "2×2 avg\npool\nstride 2"),
        (16, 5, OUTPUT, "16 × 5 × 5", "flatten"),
    ]
    x = 0.0
    for count, side, fill, label, op in maps:
        offset = 0.9 if count <= 6 else 0.42
        right, top = _stack(ax, x, yc, side * scale, count, fill, offset)
        _text(ax, (x + right) / 2, yc - 14 * scale - 2.2, label, size=10.6, va="top")
        _arrow(ax, (right + 0.6, yc), (right + gap - 0.6, yc))
        _text(ax, right + gap / 2, yc + 1.0, op, size=10.6, va="bottom")
        x = right + gap
    encoder_end = x - gap
    dense = [(400, 13.0, INPUT, "400", "dense\nsigmoid"),
             (120, 8.0, DENSE, "120", "dense\nsigmoid"),
             (84, 6.0, DENSE, "84", "dense"), (10, 2.6, DENSE, "10\nscores", None)]
    for _units, height, fill, label, op in dense:
        ax.add_patch(Rectangle((x, yc - height / 2), 1.6, height, facecolor=fill,
                               edgecolor=EDGE, lw=0.8))
        _text(ax, x + 0.8, yc - 14 * scale - 2.2, label, size=10.6, va="top")
        if op:
            _arrow(ax, (x + 2.2, yc), (x + gap - 0.6, yc))
            _text(ax, x + 1.6 + (gap - 1.6) / 2, yc + 1.0, op, size=10.6, va="bottom")
            x += gap
    head_start = encoder_end + gap
    encoder_name = "convolutional encoder: two blocks of conv + sigmoid + pooling"
    for x0, x1, name in [(0, encoder_end, encoder_name), (head_start, x + 1.6, "dense head")]:
        ax.plot([x0, x0, x1, x1], [22.5, 23.5, 23.5, 22.5], color=EDGE, lw=1)
        _text(ax, (x0 + x1) / 2, 24.8, name, size=11)
    ax.set_xlim(-1, x + 3)
    _save(fig, "ch06_lenet.svg")


# Chapter 7 ---------------------------------------------------------------------------------

def fig_stacked_3x3() -> None:
    """Two stacked 3x3 convolutions see the same 5x5 input patch as one 5x5 convolution."""
    fig, ax = _canvas(5.2, 5.0, (-0.5, 9.5), (-0.8, 10.6))
    layers = [(5, 0.0, INPUT, "input: a 5×5 patch"), (3, 5.2, OUTPUT, "after the first 3×3 conv"),
              (1, 8.6, KERNEL, "after the second 3×3 conv")]
    centre = 4.5
    corners = []
    for n, y0, fill, label in layers:
        x0 = centre - n / 2
        for i in range(n):
            for j in range(n):
                ax.add_patch(Rectangle((x0 + j, y0 + i), 1, 1, facecolor=fill, edgecolor=EDGE,
                                       lw=0.8))
        corners.append((x0, y0, n))
        _text(ax, centre + n / 2 + 0.4, y0 + n / 2, label, size=9, ha="left")
    # the top cell reads the whole 3x3 layer below it, and each of those reads a 3x3 patch
    # consecutive pairs: corners[1:] is one shorter, so the last layer ends the pairing
    for (xa, ya, na), (xb, yb, nb) in zip(corners, corners[1:], strict=False):
        for xs, xt in [(xa, xb), (xa + na, xb + nb)]:
            ax.plot([xs, xt], [ya + na, yb], color=HIGHLIGHT, lw=1.2, ls="--")
    _save(fig, "ch07_stacked_3x3.svg")


def fig_vgg_block() -> None:
    """One VGG block as a vertical flow, with the shapes it produces."""
    fig, ax = _canvas(4.4, 5.6, (-4.6, 6.4), (-0.6, 13.0))
    steps = [(11.6, "input  c_in × h × w", INPUT), (9.8, "3×3 conv, padding 1", KERNEL),
             (8.4, "ReLU", NORM), (6.4, "3×3 conv, padding 1", KERNEL), (5.0, "ReLU", NORM),
             (3.0, "2×2 max pool, stride 2", POOL), (1.0, "output  c_out × h/2 × w/2", OUTPUT)]
    for (y, label, fill), (y_next, _, _) in zip(steps, steps[1:] + [(None, None, None)],
                                                strict=True):
        _box(ax, 1.3, y, 5.6, 0.9, label, fill, size=9)
        if y_next is not None:
            _arrow(ax, (1.3, y - 0.5), (1.3, y_next + 0.5))
    # the conv + ReLU pair repeats num_convs times
    ax.plot([-1.9, -2.3, -2.3, -1.9], [10.3, 10.3, 4.5, 4.5], color=HIGHLIGHT, lw=1.4)
    _text(ax, -2.6, 7.4, "repeated\nnum_convs\ntimes\n(2 here)", size=9, ha="right",
          color=HIGHLIGHT)
    _text(ax, 4.35, 7.4, "c_out\nchannels,\nh × w kept", size=9, ha="left")
    _save(fig, "ch07_vgg_block.svg")


def fig_vgg11() -> None:
    """VGG-11 at 224x224: five blocks that halve the resolution, then three dense layers."""
    fig, ax = _canvas(11.0, 3.6, (-1, 120), (-7.5, 25))
    blocks = [(1, 64, 224), (1, 128, 112), (2, 256, 56), (2, 512, 28), (2, 512, 14)]
    x, base, step = 0.0, 0.0, 6.5
    for i, (convs, channels, side) in enumerate(blocks, start=1):
        height = 4 + side / 224 * 16          # drawn height follows the block's input side
        width = 3.2 + 1.6 * convs
        ax.add_patch(Rectangle((x, base), width, height, facecolor=KERNEL, edgecolor=EDGE,
                               lw=0.9))
        for k in range(convs):               # one stripe per 3x3 convolution
            ax.add_patch(Rectangle((x + 0.8 + 1.6 * k, base + 0.6), 1.2, height - 3.4,
                                   facecolor=OUTPUT, edgecolor=EDGE, lw=0.6))
        ax.add_patch(Rectangle((x + 0.4, base + height - 2.4), width - 0.8, 1.8, facecolor=POOL,
                               edgecolor=EDGE, lw=0.6))
        _text(ax, x + width / 2, base + height - 1.5, "pool", size=8.5)
        _text(ax, x + width / 2, base - 1.2,
              f"block {i}\n{convs} conv{'s' if convs > 1 else ''}, {channels} ch\n"
              f"{side} → {side // 2}", size=8.5, va="top")
        _arrow(ax, (x + width + 0.4, base + 2), (x + width + step - 0.4, base + 2))
        x += width + step
    _text(ax, x - step / 2, base + 3.0, "flatten", size=8.5)
    for n, label in [(25088, "25,088\n(512·7·7)"), (4096, "4096"), (4096, "4096"), (10, "10")]:
        height = {25088: 20, 4096: 12, 10: 2.5}[n]
        fill = INPUT if n == 25088 else DENSE
        ax.add_patch(Rectangle((x, base), 1.8, height, facecolor=fill, edgecolor=EDGE, lw=0.8))
        _text(ax, x + 0.9, base - 1.2, label, size=8.5, va="top")
        if label != "10":
            _arrow(ax, (x + 2.2, base + 2), (x + 6.0, base + 2))
        x += 6.4
    _text(ax, x - 11.0, base + 15.5, "dense layers; the first two\nwith ReLU and dropout 0.5",
          size=9)
    _text(ax, 32, 23.0, "8 convolutions + 3 dense layers = 11 weight layers", size=10)
    ax.set_xlim(-1, x - 2.5)
    _save(fig, "ch07_vgg11.svg")


# Chapter 8 ---------------------------------------------------------------------------------

def fig_function_classes() -> None:
    """Growing non-nested classes can move away from f*; nested ones can only get closer."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.9))
    target = (7.6, 4.1)
    panels = [
        ("non-nested classes", [((2.8, 3.2), 2.4, 1.7, 10), ((4.4, 3.8), 3.8, 2.2, -10),
                                ((2.7, 1.5), 5.0, 2.2, 0)]),
        ("nested classes", [((2.3, 2.2), 2.0, 1.5, 15), ((3.2, 2.7), 4.2, 2.9, 15),
                            ((4.4, 3.2), 6.9, 4.2, 15)]),
    ]
    shades = ["#cfe2f3", "#9fc5e8", "#6fa8dc"]
    for ax, (title, ellipses) in zip(axes, panels, strict=True):
        ax.set_xlim(-0.5, 9.0)
        ax.set_ylim(-0.6, 6.0)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=11)
        for k, ((cx, cy), w, h, angle) in reversed(list(enumerate(ellipses))):
            ax.add_patch(Ellipse((cx, cy), w, h, angle=angle, facecolor=shades[k], alpha=0.55,
                                 edgecolor=EDGE, lw=1))
            _text(ax, cx - w / 2 + 0.45, cy + 0.05 + (0.3 if k == 2 else 0),
                  f"$\\mathcal{{F}}_{k + 1}$", size=10)
        for (cx, cy), w, h, angle in ellipses:
            # the class's best function: the point of its boundary nearest to f* (sampled)
            t = np.linspace(0, 2 * np.pi, 721)
            a = np.deg2rad(angle)
            xs = cx + w / 2 * np.cos(t) * np.cos(a) - h / 2 * np.sin(t) * np.sin(a)
            ys = cy + w / 2 * np.cos(t) * np.sin(a) + h / 2 * np.sin(t) * np.cos(a)
            best = np.argmin((xs - target[0]) ** 2 + (ys - target[1]) ** 2)
            ax.plot(xs[best], ys[best], "o", ms=5, color="#1c4587")
            ax.plot([xs[best], target[0]], [ys[best], target[1]], color="#1c4587", lw=0.8,
                    ls=":")
        ax.plot(*target, "*", ms=16, color=HIGHLIGHT, mec=EDGE, mew=0.6)
        _text(ax, target[0] + 0.1, target[1] + 0.55, "$f^*$", size=12)
    _save(fig, "ch08_function_classes.svg")


def fig_residual_block() -> None:
    """A plain block, a residual block, and a residual block with a 1x1 conv on the shortcut."""
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 5.6))
    titles = ["plain block", "residual block", "residual block, 1×1 shortcut"]
    ys = {"x": 0.4, "c1": 1.6, "b1": 2.55, "r1": 3.5, "c2": 4.6, "b2": 5.55, "add": 6.6,
          "r2": 7.6, "out": 8.7}
    for kind, (ax, title) in enumerate(zip(axes, titles, strict=True)):
        ax.set_xlim(-3.1, 4.35)
        ax.set_ylim(-0.3, 9.6)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=11)
        first = "3×3 conv, stride s" if kind == 2 else "3×3 conv"
        steps = [("x", "input x", INPUT), ("c1", first, KERNEL), ("b1", "batch norm", NORM),
                 ("r1", "ReLU", NORM), ("c2", "3×3 conv", KERNEL), ("b2", "batch norm", NORM)]
        if kind:
            steps.append(("add", None, None))
        steps += [("r2", "ReLU", NORM), ("out", "f(x)" if kind == 0 else "ReLU(g(x) + x)",
                                             OUTPUT)]
        if kind == 2:
            steps[-1] = ("out", "ReLU(g(x) + 1×1 conv(x))", OUTPUT)
        for (key, label, fill), (key_next, _, _) in zip(steps, steps[1:] + [(None, None, None)],
                                                        strict=True):
            y = ys[key]
            if label is None:  # the addition node
                ax.add_patch(plt.Circle((0, y), 0.32, facecolor="white", edgecolor=EDGE, lw=1.2))
                _text(ax, 0, y - 0.02, "+", size=13)
                top = y + 0.32
            else:
                wide = key == "out" and kind == 2
                _box(ax, 0, y, 6.0 if wide else 4.0, 0.62, label, fill, size=10)
                top = y + 0.31
            if key_next is not None:
                next_y = ys[key_next]
                next_bottom = next_y - (0.32 if key_next == "add" else 0.31)
                _arrow(ax, (0, top), (0, next_bottom))
        if kind:
            # the shortcut leaves the input, runs up the right side and enters the addition
            x_side = 3.25
            path = [(2.0, ys["x"]), (x_side, ys["x"]), (x_side, ys["add"])]
            if kind == 2:
                _box(ax, x_side, 3.6, 2.0, 1.0, "1×1 conv\nstride s", KERNEL, size=9.5)
                ax.plot([2.0, x_side, x_side], [ys["x"], ys["x"], 3.1], color=HIGHLIGHT, lw=1.6)
                ax.plot([x_side, x_side], [4.1, ys["add"]], color=HIGHLIGHT, lw=1.6)
            else:
                ax.plot(*zip(*path, strict=True), color=HIGHLIGHT, lw=1.6)
                _text(ax, x_side + 0.15, 3.6, "identity", size=10, ha="left", rotation=90,
                      color=HIGHLIGHT)
            _arrow(ax, (x_side, ys["add"]), (0.34, ys["add"]), color=HIGHLIGHT, lw=1.6)
            _text(ax, -2.4, 4.0, "g(x)", size=10.5, rotation=90)
    _save(fig, "ch08_residual_block.svg")


def fig_resnet18() -> None:
    """ResNet-18 at 96x96: a stem, four stages of two residual blocks, pooling and a dense layer."""
    fig, ax = _canvas(9.6, 4.6, (-0.5, 115.0), (-1.0, 44.0))
    rows = [  # (label, fill, width, output shape written under the arrow that follows)
        [("input", INPUT, 8.0, "1×96×96"),
         ("stem\n7×7 conv, 64, /2\nbatch norm, ReLU\n3×3 max pool, /2", KERNEL, 18.0, "64×24×24"),
         ("stage 1\nResidual(64)\nResidual(64)", OUTPUT, 14.0, "64×24×24"),
         ("stage 2\nResidual(128, 1×1, /2)\nResidual(128)", OUTPUT, 21.0, "128×12×12")],
        [("stage 3\nResidual(256, 1×1, /2)\nResidual(256)", OUTPUT, 21.0, "256×6×6"),
         ("stage 4\nResidual(512, 1×1, /2)\nResidual(512)", OUTPUT, 21.0, "512×3×3"),
         ("global\naverage pool", POOL, 13.0, "512"),
         ("dense", DENSE, 9.0, "10 scores")],
    ]
    gap, height = 11.0, 9.0
    for r, (yc, row) in enumerate(zip((28.0, 7.0), rows, strict=True)):
        x = 0.0 if r == 0 else 6.5
        for i, (label, fill, width, shape) in enumerate(row):
            _box(ax, x + width / 2, yc, width, height, label, fill, size=8.5)
            x += width
            _text(ax, x + gap / 2, yc - 1.0, shape, size=8.5, va="top")
            if r == 0 and i == len(row) - 1:
                # the last arrow of the first row bends down and back to the second row
                ax.plot([x + 0.4, x + gap / 2, x + gap / 2, 3.25, 3.25],
                        [yc, yc, 17.5, 17.5, 7.0], color=EDGE, lw=1.3)
                _arrow(ax, (3.25, 7.0), (6.1, 7.0))
            else:
                _arrow(ax, (x + 0.4, yc), (x + gap - 0.4, yc))
            x += gap
    _text(ax, 54, 39.5, "1 stem conv + 4 stages × 2 blocks × 2 convs + 1 dense = 18 weight "
          "layers\n(the 1×1 shortcut convolutions are not counted)", size=10)
    _save(fig, "ch08_resnet18.svg")


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "cnncourse-ch06-08"  # stable ids inside the SVG
    for draw in (fig_lenet, fig_stacked_3x3, fig_vgg_block, fig_vgg11, fig_function_classes,
                 fig_residual_block, fig_resnet18):
        draw()


if __name__ == "__main__":
    main()
