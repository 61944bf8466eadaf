"""Draw book/_extra/favicon.ico: the logo (a 2x2 window over a 4x4 grid) at 16, 32, 48 px.

Browsers ask for /favicon.ico at the site's root, and Jupyter Book's root page is a bare
redirect without an icon link, so the site ships one there (``html_extra_path``).
Run: python book/figures/make_favicon.py
"""
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "_extra" / "favicon.ico"


def draw(size: int = 240) -> Image.Image:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    u = size / 120  # the logo's viewBox is 120 x 120
    for i in range(4):
        for j in range(4):
            x, y = (10 + 25 * i) * u, (10 + 25 * j) * u
            d.rectangle([x, y, x + 25 * u, y + 25 * u], fill="#eef2f7", outline="#5b6b80",
                        width=max(1, round(2 * u)))
    d.rectangle([35 * u, 35 * u, 85 * u, 85 * u], fill=(242, 142, 43, 200),
                outline="#c0551a", width=max(1, round(4 * u)))
    return img


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    draw().save(OUT, sizes=[(16, 16), (32, 32), (48, 48)])
    print(OUT)
