"""A flame graph as SVG from collapsed stacks ("a;b;c 12" lines, py-spy --format raw).

py-spy writes one format per recording and the bench merges several processes of
one role before drawing, so the drawing is done here: the classic layout (root at
the bottom, a frame's width its share of samples, callees stacked above it), a
tooltip per frame (its name, samples and percent), no script. Any browser shows it.
"""

from __future__ import annotations

from collections import Counter
from html import escape

__all__ = ["render_svg"]

WIDTH_PX = 1200
ROW_PX = 16
MIN_WIDTH_PX = 0.3  # narrower frames are not drawn
CHAR_PX = 7.0  # monospace 12px, about


class _Node:
    __slots__ = ("children", "count")

    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, _Node] = {}


def _tree(stacks: Counter[str]) -> _Node:
    root = _Node()
    for stack, count in stacks.items():
        node = root
        node.count += count
        for frame in stack.split(";"):
            node = node.children.setdefault(frame, _Node())
            node.count += count
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0)


def _colour(name: str) -> str:
    """Warm colours, stable per frame name (like flamegraph.pl's "hot" palette)."""
    h = sum(ord(c) * (i + 1) for i, c in enumerate(name)) % 1000
    return f"rgb({205 + h % 50},{(h * 7) % 180 + 40},{(h * 13) % 55})"


def render_svg(stacks: Counter[str], title: str) -> str:
    """The SVG document of ``stacks``, titled ``title``."""
    root = _tree(stacks)
    total = root.count or 1
    rows = _depth(root)
    height = (rows + 2) * ROW_PX
    scale = WIDTH_PX / total
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height}" '
        f'font-family="monospace" font-size="12">',
        f'<text x="4" y="13">{escape(title)}: {total} samples (hover a frame)</text>',
    ]

    def draw(name: str, node: _Node, x: float, depth: int) -> None:
        width = node.count * scale
        if width < MIN_WIDTH_PX:
            return
        y = height - (depth + 1) * ROW_PX
        label = escape(f"{name} ({node.count} samples, {100 * node.count / total:.1f}%)")
        out.append(
            f'<g><title>{label}</title><rect x="{x:.1f}" y="{y}" width="{width:.1f}" '
            f'height="{ROW_PX - 1}" fill="{_colour(name)}"/>'
        )
        fits = int(width / CHAR_PX) - 1
        if fits >= 3:
            text = name if len(name) <= fits else name[: fits - 2] + ".."
            out.append(f'<text x="{x + 2:.1f}" y="{y + ROW_PX - 4}">{escape(text)}</text>')
        out.append("</g>")
        offset = x
        for child_name, child in sorted(node.children.items()):
            draw(child_name, child, offset, depth + 1)
            offset += child.count * scale

    draw("all", root, 0.0, 0)
    out.append("</svg>")
    return "\n".join(out) + "\n"
