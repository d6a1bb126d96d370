"""Cover art drawn from the cover-art part of a title's hidden latent vector (4 dims), with Pillow.

Each latent dimension drives one visual trait, through noise so that the picture is a noisy view of the latent:

- dim 0: palette hue (through the normal CDF, so hue is spread over the colour wheel);
- dim 1: shape family (circles for negative values, rectangles near zero, triangles for positive values);
- dim 2: texture density (number of strokes or dots, log-linear in the value);
- dim 3: brightness (dark posters for negative values: horror and thrillers lean there).

JPEG encoding uses a fixed quality and no metadata, so the same latent and random stream give the same bytes.
"""

from __future__ import annotations

import colorsys
import io
import math

import numpy as np
from PIL import Image, ImageDraw


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def draw_cover(latent: np.ndarray, rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A poster-like image for one title from its 4 cover-art latent values."""
    v = [float(x) for x in latent]
    hue = _phi(0.9 * v[0] + rng.normal(0.0, 0.2))
    brightness = 0.15 + 0.75 * _phi(v[3] + rng.normal(0.0, 0.3))
    saturation = 0.45 + 0.45 * rng.random()

    # Background: a vertical gradient that darkens towards the bottom.
    top = np.array(_rgb(hue, saturation, brightness), dtype=np.float32)
    bottom = np.array(_rgb(hue + 0.04, saturation * 0.8, brightness * 0.45), dtype=np.float32)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    rows = (top[None, :] * (1.0 - t) + bottom[None, :] * t).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(np.broadcast_to(rows[:, None, :], (height, width, 3))), "RGB")
    draw = ImageDraw.Draw(image)

    shape_logits = np.array([-1.8 * v[1], 0.0, 1.8 * v[1]]) + rng.gumbel(size=3)
    family = int(np.argmax(shape_logits))
    accent_hue = hue + (0.5 if rng.random() < 0.5 else 0.08)
    for _ in range(int(rng.integers(2, 8))):
        cx, cy = rng.random() * width, rng.random() * height * 0.8
        size = (0.12 + 0.35 * rng.random()) * width
        colour = _rgb(accent_hue + rng.normal(0.0, 0.03), 0.3 + 0.6 * rng.random(),
                      min(1.0, brightness + 0.35 * rng.random()))
        box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
        if family == 0:
            draw.ellipse(box, fill=colour)
        elif family == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(cx, cy - size / 2), (cx - size / 2, cy + size / 2), (cx + size / 2, cy + size / 2)],
                         fill=colour)

    n_marks = int(min(400, math.exp(3.0 + 1.1 * v[2] + rng.normal(0.0, 0.3))))
    mark_colour = _rgb(accent_hue + 0.25, 0.2, 1.0 - 0.6 * brightness)
    xs = rng.random(n_marks) * width
    ys = rng.random(n_marks) * height
    if rng.random() < 0.5:
        length = 4.0 + 10.0 * rng.random()
        for x, y in zip(xs.tolist(), ys.tolist()):
            draw.line([(x, y), (x + length, y - length)], fill=mark_colour, width=1)
    else:
        for x, y in zip(xs.tolist(), ys.tolist()):
            draw.rectangle((x, y, x + 1, y + 1), fill=mark_colour)

    # A title band: a dark strip with light word blocks, as posters carry their title.
    band_top = int(height * 0.8)
    draw.rectangle((0, band_top, width, height), fill=_rgb(hue, 0.3, 0.12))
    x = 10
    for _ in range(int(rng.integers(1, 4))):
        w = int(rng.integers(15, 50))
        if x + w > width - 10:
            break
        draw.rectangle((x, band_top + 14, x + w, band_top + 26), fill=(235, 235, 235))
        x += w + 8
    return image


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()
