"""Draw the static diagrams of chapters 1-5 as SVG files in this folder.

Run from anywhere: ``python book/figures/make_figures_ch01_05.py``. The output is
deterministic (fixed SVG ids, no date), so re-running only changes a file when its drawing
changed. The numbers in the diagrams are the chapters' worked examples.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

HERE = Path(__file__).resolve().parent
INPUT, KERNEL, OUTPUT = "#dbe9f6", "#fde3c8", "#d9ead3"   # cell fill colours by role
PAD = "#f2f2f2"
HIGHLIGHT = "#e69138"
EDGE = "#555555"


def _canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    """A blank axes whose data units are grid cells, with y growing downwards."""
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(ylim[1], ylim[0])
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _grid(ax, values, x0: float, y0: float, fill: str = INPUT, fmt: str = "{:g}",
          fills: dict | None = None, fontsize: int = 12) -> None:
    """Draw a matrix of numbered cells with its top-left corner at (x0, y0)."""
    values = np.asarray(values)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            color = (fills or {}).get((i, j), fill)
            ax.add_patch(Rectangle((x0 + j, y0 + i), 1, 1, facecolor=color, edgecolor=EDGE, lw=1))
            text = "" if fmt is None else fmt.format(values[i, j])
            ax.text(x0 + j + 0.5, y0 + i + 0.5, text, ha="center", va="center", fontsize=fontsize)


def _outline(ax, x0: float, y0: float, h: float, w: float, color: str = HIGHLIGHT,
             lw: float = 3, ls: str = "-") -> None:
    ax.add_patch(Rectangle((x0, y0), w, h, fill=False, edgecolor=color, lw=lw, ls=ls))


def _label(ax, x: float, y: float, text: str, size: int = 12, **kw) -> None:
    ax.text(x, y, text, ha="center", va="center", fontsize=size, **kw)


def _save(fig, name: str) -> None:
    fig.savefig(HERE / name, bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)


def _corr(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(X, K.shape)
    return (windows * K).sum(axis=(-1, -2))


# Chapter 1 ---------------------------------------------------------------------------------

def _scene(rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray, tuple]:
    """A cluttered binary scene of bars and corners, with one 5x5 ring hidden in it."""
    target = np.zeros((5, 5))
    target[0, 1:4] = target[4, 1:4] = target[1:4, 0] = target[1:4, 4] = 1
    scene = np.zeros((size, size))
    for _ in range(70):
        r, c = rng.integers(0, size - 5, size=2)
        kind = rng.integers(0, 3)
        if kind == 0:
            scene[r, c:c + 4] = 1          # horizontal bar
        elif kind == 1:
            scene[r:r + 4, c] = 1          # vertical bar
        else:
            scene[r, c:c + 3] = 1          # corner
            scene[r:r + 3, c] = 1
    where = (31, 12)
    scene[where[0] - 1:where[0] + 6, where[1] - 1:where[1] + 6] = 0   # a clear margin
    scene[where[0]:where[0] + 5, where[1]:where[1] + 5] = target
    return scene, target, where


def fig_find_the_pattern() -> None:
    scene, target, where = _scene(np.random.default_rng(7))
    response = _corr(scene, 2 * target - 1)   # +1 where the ring has ink, -1 elsewhere
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6),
                             gridspec_kw={"width_ratios": [1, 0.25, 1]})
    ax = axes[0]
    ax.imshow(scene, cmap="Greys", interpolation="nearest")
    for r, c in [(2, 2), (2, 14), (2, 26), (14, 2), (14, 14)]:
        _outline(ax, c - 0.5, r - 0.5, 5, 5, color="#3d85c6", lw=1.5, ls="--")
    _outline(ax, where[1] - 0.5, where[0] - 0.5, 5, 5)
    ax.set_title("scene: where is the ring?")
    ax.axis("off")
    ax = axes[1]
    ax.imshow(target, cmap="Greys", interpolation="nearest")
    ax.set_title("detector\n(5x5 pattern)")
    ax.axis("off")
    ax = axes[2]
    # only strong matches matter to the reader: negative responses are shown as zero
    ax.imshow(np.maximum(response, 0), cmap="magma", interpolation="nearest")
    r, c = np.unravel_index(response.argmax(), response.shape)
    ax.plot(c, r, marker="o", ms=14, mfc="none", mec=HIGHLIGHT, mew=2.5)
    ax.set_title("detector response at every position")
    ax.axis("off")
    _save(fig, "ch01_find_the_pattern.svg")


def fig_connectivity() -> None:
    n = 8
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
    palette = plt.get_cmap("tab10")
    titles = ["dense: every pixel feeds every unit",
              "local: each unit sees 3 pixels,\nwith its own weights",
              "convolution: local and the same\n3 weights everywhere"]
    for panel, (ax, title) in enumerate(zip(axes, titles, strict=True)):
        xs = np.arange(n)
        for i in xs:                      # i: hidden unit, j: input pixel
            if panel == 0:
                for j in xs:
                    ax.plot([j, i], [0, 1], color="#999999", lw=0.7)
            else:
                for d in range(-1, 2):
                    j = i + d
                    if 0 <= j < n:
                        color = palette((3 * i + d + 1) % 10) if panel == 1 else palette(d + 1)
                        ax.plot([j, i], [0, 1], color=color, lw=2)
        ax.scatter(xs, np.zeros(n), s=160, color=INPUT, edgecolor=EDGE, zorder=3)
        ax.scatter(xs, np.ones(n), s=160, color=OUTPUT, edgecolor=EDGE, zorder=3)
        ax.text(-0.9, 0, "pixels", ha="right", va="center")
        ax.text(-0.9, 1, "units", ha="right", va="center")
        ax.set_title(title, fontsize=11)
        ax.set_xlim(-2.6, n)
        ax.set_ylim(-0.3, 1.3)
        ax.axis("off")
    _save(fig, "ch01_connectivity.svg")


# Chapter 2 ---------------------------------------------------------------------------------

def fig_cross_correlation() -> None:
    X, K = np.arange(9).reshape(3, 3), np.arange(4).reshape(2, 2)
    Y = _corr(X, K)
    fig, ax = _canvas(7, 2.6, (-0.2, 12.2), (-0.9, 3.8))
    window = {(0, 0): "#f9cb9c", (0, 1): "#f9cb9c", (1, 0): "#f9cb9c", (1, 1): "#f9cb9c"}
    _grid(ax, X, 0, 0, fills=window)
    _outline(ax, 0, 0, 2, 2)
    _label(ax, 3.8, 1.5, "$\\star$", 34)
    _grid(ax, K, 4.6, 0.5, fill=KERNEL)
    _label(ax, 7.6, 1.5, "=", 20)
    _grid(ax, Y, 8.4, 0.5, fill=OUTPUT, fills={(0, 0): "#f9cb9c"})
    _outline(ax, 8.4, 0.5, 1, 1)
    _label(ax, 1.5, -0.5, "input", 11)
    _label(ax, 5.6, 0.0, "kernel", 11)
    _label(ax, 9.4, 0.0, "output", 11)
    _label(ax, 6, 3.45, "$0\\cdot0 + 1\\cdot1 + 3\\cdot2 + 4\\cdot3 = 19$", 13)
    _save(fig, "ch02_cross_correlation.svg")


def fig_shifted_slices() -> None:
    X, K = np.arange(9).reshape(3, 3), np.arange(4).reshape(2, 2)
    fig, ax = _canvas(11, 2.4, (-0.9, 24.0), (-1.0, 3.4))
    x = 0.0
    for a in range(2):
        for b in range(2):
            fills = {(a + i, b + j): "#f9cb9c" for i in range(2) for j in range(2)}
            ax.text(x + 0.8, 1.5, f"{K[a, b]}$\\times$", ha="right", va="center", fontsize=13)
            _grid(ax, X, x + 0.9, 0, fills=fills, fontsize=10)
            _outline(ax, x + 0.9 + b, a, 2, 2)
            _label(ax, x + 2.4, -0.5, f"X[{a}:{a + 2}, {b}:{b + 2}]", 10, family="monospace")
            x += 5.2
            _label(ax, x - 0.9, 1.5, "+" if (a, b) != (1, 1) else "=", 16)
    _grid(ax, _corr(X, K), x + 0.2, 0.5, fill=OUTPUT)
    _label(ax, x + 1.2, 0.0, "output", 10)
    _save(fig, "ch02_shifted_slices.svg")


def fig_receptive_field() -> None:
    fig, ax = _canvas(9, 3.5, (-0.3, 17.5), (-1.2, 7.3))
    blank = None
    fills_in = {(i, j): "#f9cb9c" for i in range(5) for j in range(5)}
    _grid(ax, np.zeros((6, 6)), 0, 0, fmt=blank, fills=fills_in)
    _outline(ax, 0, 0, 5, 5)
    fills_mid = {(i, j): "#f9cb9c" for i in range(3) for j in range(3)}
    _grid(ax, np.zeros((4, 4)), 8, 1, fmt=blank, fill="#e3dff0", fills=fills_mid)
    _outline(ax, 8, 1, 3, 3)
    _grid(ax, np.zeros((2, 2)), 14.5, 2, fmt=blank, fill=OUTPUT, fills={(0, 0): "#f9cb9c"})
    _outline(ax, 14.5, 2, 1, 1)
    for (x0, x1, y) in [(6.3, 7.7, 3.0), (12.3, 14.2, 3.0)]:
        ax.add_patch(FancyArrowPatch((x0, y), (x1, y), arrowstyle="-|>", mutation_scale=16,
                                     color=EDGE))
    _label(ax, 7.0, 2.4, "3x3", 10)
    _label(ax, 13.25, 2.4, "3x3", 10)
    _label(ax, 3, -0.6, "input 6x6", 11)
    _label(ax, 10, 0.4, "feature map 4x4", 11)
    _label(ax, 15.5, 1.4, "output 2x2", 11)
    _label(ax, 8.5, 6.8, "one output value depends on a 3x3 patch of the feature map "
                         "and on a 5x5 patch of the input", 10)
    _save(fig, "ch02_receptive_field.svg")


# Chapter 3 ---------------------------------------------------------------------------------

def fig_padding() -> None:
    X, K = np.arange(9).reshape(3, 3), np.arange(4).reshape(2, 2)
    Xp = np.pad(X, 1)
    fills = {(i, j): PAD for i in range(5) for j in range(5) if i in (0, 4) or j in (0, 4)}
    fig, ax = _canvas(8, 2.9, (-0.2, 15.4), (-0.9, 5.2))
    _grid(ax, Xp, 0, 0, fills=fills)
    _outline(ax, 0, 0, 2, 2)
    _label(ax, 2.5, -0.5, "input 3x3, padded by 1 on each side", 10)
    _label(ax, 5.9, 2.5, "$\\star$", 34)
    _grid(ax, K, 6.7, 1.5, fill=KERNEL)
    _label(ax, 9.6, 2.5, "=", 20)
    _grid(ax, _corr(Xp, K), 10.4, 0.5, fill=OUTPUT, fills={(0, 0): "#f9cb9c"})
    _outline(ax, 10.4, 0.5, 1, 1)
    _label(ax, 12.4, 0.0, "output 4x4", 10)
    _save(fig, "ch03_padding.svg")


def fig_stride() -> None:
    fig, ax = _canvas(8, 3.4, (-0.2, 13.2), (-1.0, 8.3))
    colors = ["#cc0000", "#e69138", "#3d85c6"]
    _grid(ax, np.zeros((7, 7)), 0, 0, fmt=None)
    out_fills = {}
    for j, color in enumerate(colors):
        _outline(ax, 2 * j + 0.06 * j, 0.06 * j, 3, 3, color=color, lw=2.5)
        out_fills[(0, j)] = color
    _label(ax, 3.5, -0.5, "input 7x7, kernel 3x3, stride 2", 10)
    ax.add_patch(FancyArrowPatch((7.5, 3.5), (9.0, 3.5), arrowstyle="-|>", mutation_scale=16,
                                 color=EDGE))
    _grid(ax, np.zeros((3, 3)), 9.6, 2, fmt=None, fill=OUTPUT)
    for j, color in enumerate(colors):
        ax.add_patch(Rectangle((9.6 + j, 2), 1, 1, facecolor=color, alpha=0.6, edgecolor=EDGE))
    _label(ax, 11.1, 1.5, "output 3x3", 10)
    _label(ax, 6.5, 7.8, "the window jumps 2 cells at a time: $\\lfloor(7-3+2)/2\\rfloor = 3$ "
                         "positions per axis", 10)
    _save(fig, "ch03_stride.svg")


# Chapter 4 ---------------------------------------------------------------------------------

def fig_multi_in() -> None:
    X = np.stack([np.arange(9).reshape(3, 3), np.arange(1, 10).reshape(3, 3)])
    K = np.stack([np.arange(4).reshape(2, 2), np.arange(1, 5).reshape(2, 2)])
    fig, ax = _canvas(9, 4.4, (-1.8, 17.4), (-0.8, 8.2))
    for c in range(2):
        y = 4.4 * c
        _label(ax, -1.1, y + 1.5, f"channel {c}", 10, rotation=90)
        _grid(ax, X[c], 0, y)
        _label(ax, 3.8, y + 1.5, "$\\star$", 34)
        _grid(ax, K[c], 4.6, y + 0.5, fill=KERNEL)
        _label(ax, 7.6, y + 1.5, "=", 20)
        _grid(ax, _corr(X[c], K[c]), 8.4, y + 0.5, fill="#e3dff0")
    _label(ax, 11.4, 3.7, "sum", 12)
    ax.add_patch(FancyArrowPatch((10.8, 1.5), (13.0, 3.3), arrowstyle="-|>", mutation_scale=14,
                                 color=EDGE))
    ax.add_patch(FancyArrowPatch((10.8, 5.9), (13.0, 4.4), arrowstyle="-|>", mutation_scale=14,
                                 color=EDGE))
    _grid(ax, _corr(X[0], K[0]) + _corr(X[1], K[1]), 13.4, 2.9, fill=OUTPUT)
    _label(ax, 14.4, 2.4, "output", 10)
    _save(fig, "ch04_multi_in.svg")


def fig_one_by_one() -> None:
    fig, ax = _canvas(8.5, 3.4, (-0.5, 15.5), (-1.4, 5.6))
    in_colors = ["#f4cccc", "#d9ead3", "#cfe2f3"]
    for c, color in enumerate(in_colors):              # stacked channels, back to front
        off = 0.45 * (2 - c)
        _grid(ax, np.zeros((3, 3)), off, off + 0.6, fmt=None, fill=color)
    _outline(ax, 1, 1.6, 1, 1)                         # pixel (1, 1) of the front channel
    _label(ax, 2.0, -0.6, "3 input channels", 10)
    ax.add_patch(FancyArrowPatch((4.7, 2.7), (7.3, 2.7), arrowstyle="-|>", mutation_scale=16,
                                 color=EDGE))
    _label(ax, 6.0, 1.6, "1x1 kernel:\n2x3 weights", 10)
    out_colors = ["#fff2cc", "#ead1dc"]
    for c, color in enumerate(out_colors):
        off = 0.45 * (1 - c)
        _grid(ax, np.zeros((3, 3)), 8 + off, off + 0.8, fmt=None, fill=color)
    _outline(ax, 9, 1.8, 1, 1)
    _label(ax, 9.7, -0.6, "2 output channels", 10)
    _label(ax, 7.5, 5.1, "at every pixel: output vector (2) = weights (2x3) @ input vector (3)",
           10)
    _save(fig, "ch04_one_by_one.svg")


# Chapter 5 ---------------------------------------------------------------------------------

def fig_pooling() -> None:
    X = np.arange(9).reshape(3, 3)
    windows = np.lib.stride_tricks.sliding_window_view(X, (2, 2))
    fig, ax = _canvas(8, 2.9, (-0.2, 15.8), (-0.9, 4.3))
    window = {(i, j): "#f9cb9c" for i in range(2) for j in range(2)}
    _grid(ax, X, 0, 0, fills=window)
    _outline(ax, 0, 0, 2, 2)
    _label(ax, 1.5, -0.5, "input", 11)
    ax.add_patch(FancyArrowPatch((3.4, 1.0), (6.2, 0.6), arrowstyle="-|>", mutation_scale=14,
                                 color=EDGE))
    ax.add_patch(FancyArrowPatch((3.4, 2.0), (6.2, 2.6), arrowstyle="-|>", mutation_scale=14,
                                 color=EDGE))
    _label(ax, 4.7, 0.35, "2x2 max", 10)
    _label(ax, 4.7, 2.75, "2x2 mean", 10)
    _grid(ax, windows.max(axis=(-1, -2)), 6.6, -0.5, fill=OUTPUT, fills={(0, 0): "#f9cb9c"})
    _grid(ax, windows.mean(axis=(-1, -2)), 6.6, 1.9, fill="#e3dff0", fills={(0, 0): "#f9cb9c"})
    _label(ax, 12.0, 0.5, "max(0, 1, 3, 4) = 4", 11)
    _label(ax, 12.0, 2.9, "(0 + 1 + 3 + 4) / 4 = 2", 11)
    _save(fig, "ch05_pooling.svg")


FIGURES = [fig_find_the_pattern, fig_connectivity, fig_cross_correlation, fig_shifted_slices,
           fig_receptive_field, fig_padding, fig_stride, fig_multi_in, fig_one_by_one,
           fig_pooling]


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "cnncourse-ch01-05"   # stable ids inside the SVG
    for draw in FIGURES:
        draw()
        print(f"drew {draw.__name__}")


if __name__ == "__main__":
    main()
