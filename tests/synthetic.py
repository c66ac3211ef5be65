"""A fake eye drawn with numpy, so tests can make labelled images of any size without real data."""

from __future__ import annotations

import numpy as np


def synthetic_eye(
    open: bool, size: int | tuple[int, int] = 32, rng: np.random.Generator | None = None
) -> np.ndarray:
    """uint8 grey (H, W): a bright eye ellipse with a dark iris disc when open, a dark lash line when closed.

    Position, brightness and noise are jittered by `rng`, so two calls differ but stay clearly one class.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    h, w = (size, size) if isinstance(size, int) else size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy = h / 2 + rng.uniform(-0.05, 0.05) * h
    cx = w / 2 + rng.uniform(-0.05, 0.05) * w
    skin = rng.uniform(110, 150)
    image = np.full((h, w), skin, dtype=np.float32)
    ellipse = ((xx - cx) / (0.4 * w)) ** 2 + ((yy - cy) / (0.22 * h)) ** 2 <= 1.0
    if open:
        image[ellipse] = rng.uniform(190, 230)  # sclera
        iris_r = rng.uniform(0.15, 0.2) * min(h, w)
        iris = (xx - cx) ** 2 + (yy - cy) ** 2 <= iris_r**2
        image[iris & ellipse] = rng.uniform(30, 60)
        pupil = (xx - cx) ** 2 + (yy - cy) ** 2 <= (0.4 * iris_r) ** 2
        image[pupil] = rng.uniform(5, 20)
    else:
        image[ellipse] = skin + rng.uniform(5, 20)  # lid
        line = (np.abs(yy - cy) <= max(1.0, 0.04 * h)) & (np.abs(xx - cx) <= 0.4 * w)
        image[line] = rng.uniform(20, 50)
    image += rng.normal(0.0, 4.0, size=(h, w)).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_eye_tree(root, people: int = 4, per_class: int = 30, seed: int = 0, sides: tuple[int, int] = (24, 48),
                   image=None):
    """A class-folder tree ``root/p<person>/{open,closed}/<i>.png`` of synthetic eyes (subject = person).

    ``image(is_open, i, rng) -> (array, suffix)`` replaces the default square grey PNG of a side drawn from ``sides``.
    """
    from pathlib import Path

    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for person in range(people):
        for label in ("open", "closed"):
            folder = root / f"p{person}" / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                if image is None:
                    pixels, suffix = synthetic_eye(label == "open", int(rng.integers(*sides)), rng), "png"
                else:
                    pixels, suffix = image(label == "open", i, rng)
                Image.fromarray(pixels).save(folder / f"{i}.{suffix}")
    return root
