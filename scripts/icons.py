#!/usr/bin/env python3
"""Draws Ferry's app icons (the page's favicon: a white boat on a teal tile) as PNGs.

Run once after changing the drawing; the PNGs are kept in the repository, since browsers ask
for bitmaps at fixed sizes and nothing should be drawn at build time.
"""
import struct
import sys
import zlib
from pathlib import Path

TEAL = (0x0F, 0x76, 0x6E)
WHITE = (0xFF, 0xFF, 0xFF)
# The favicon's shapes, on its 32-unit grid.
HULL = [(6, 19), (26, 19), (23, 25), (9, 25)]
SAIL = [(15, 7), (15, 17), (9, 17)]
SAMPLES = 4  # Per axis, per pixel: edges are anti-aliased.


def inside(polygon, x, y):
    """Whether (x, y) lies in the polygon (even-odd rule)."""
    hit = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            hit = not hit
        j = i
    return hit


def in_tile(x, y, radius):
    """Whether (x, y) lies on the 32-unit tile with corners of `radius`."""
    cx = min(max(x, radius), 32 - radius)
    cy = min(max(y, radius), 32 - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def draw(size, maskable):
    """The icon's RGBA rows: a maskable icon fills its square and keeps the boat in the
    middle 70 %, the safe zone every mask leaves visible."""
    scale = 0.7 if maskable else 1.0
    rows = []
    for py in range(size):
        row = bytearray([0])
        for px in range(size):
            tile = boat = 0
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    x = (px + (sx + 0.5) / SAMPLES) * 32 / size
                    y = (py + (sy + 0.5) / SAMPLES) * 32 / size
                    if maskable or in_tile(x, y, 8):
                        tile += 1
                        bx = 16 + (x - 16) / scale
                        by = 16 + (y - 16) / scale
                        if inside(HULL, bx, by) or inside(SAIL, bx, by):
                            boat += 1
            total = SAMPLES * SAMPLES
            if tile == 0:
                row += bytes(4)
                continue
            mix = boat / tile
            colour = [round(t + (w - t) * mix) for t, w in zip(TEAL, WHITE)]
            row += bytes(colour + [round(255 * tile / total)])
        rows.append(bytes(row))
    return b"".join(rows)


def png(size, pixels):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels, 9))
        + chunk(b"IEND", b"")
    )


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "icons")
    out.mkdir(exist_ok=True)
    for size, maskable, name in [
        (192, False, "icon-192.png"),
        (512, False, "icon-512.png"),
        (512, True, "maskable-512.png"),
        (180, True, "apple-touch-icon.png"),
    ]:
        (out / name).write_bytes(png(size, draw(size, maskable)))


if __name__ == "__main__":
    main()
