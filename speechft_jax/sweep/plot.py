"""A dependency-free SVG line plot: one line per task of a score against alpha."""

from __future__ import annotations

from pathlib import Path

from speechft_jax.files import atomic_write_bytes

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def line_plot_svg(path: Path, alphas, series: dict, *, title: str, y_label: str, width: int = 640,
                  height: int = 400) -> Path:
    """`series`: `{name: [value per alpha]}`; writes an SVG with axes, ticks and a legend."""
    left, right, top, bottom = 60, 150, 40, 50
    values = [v for vs in series.values() for v in vs]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    a_lo, a_hi = min(alphas), max(alphas) if max(alphas) > min(alphas) else min(alphas) + 1
    x = lambda a: left + (a - a_lo) / (a_hi - a_lo) * (width - left - right)
    y = lambda v: top + (hi - v) / (hi - lo) * (height - top - bottom)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
             f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">alpha</text>',
             f'<text x="15" y="{(top + height - bottom) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 15 {(top + height - bottom) / 2})">{y_label}</text>']
    for a in alphas:
        parts.append(f'<text x="{x(a):.1f}" y="{height - bottom + 16}" text-anchor="middle">{a:g}</text>')
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#ddd"/>')
    for i, (name, vs) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{x(a):.1f},{y(v):.1f}" for a, v in zip(alphas, vs))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(a):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>' for a, v in zip(alphas, vs)]
        parts.append(f'<text x="{width - right + 12}" y="{top + 16 * (i + 1)}" fill="{colour}">{name}</text>')
    parts.append("</svg>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, ("\n".join(parts) + "\n").encode())
    return path
