"""Views as files for slides and papers: each exported view laid out as one matplotlib figure, headed, keyed and
stamped, and saved as PNG (1,200 pixels wide), SVG and PDF.

A map is embedded as a raster at the trace's resolution (one pixel a token), over the photo as the page shows it
under a map; what is drawn over it (the half-mass outline, home cells, the home
grid, owners' numbers), the key, the headings and the captions are vectors, and every word stays text. The plots
are drawn from the page's own plotly figures (their data and titles), so there is one declaration of each.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import matplotlib
import numpy as np
import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.textpath import text_to_path

from viewer import keys, overlay, render
from viewer.analysed import Analysis
from viewer.keys import ColourKey

WIDTH = 12.0  # inches
DPI = 100  # a PNG is WIDTH * DPI = 1,200 pixels wide
MARGIN = 0.35
GAP = 0.12
# Type sizes in points; at DPI a point is 1.39 pixels, so body text is 17 pixels high on the PNG.
TITLE, CONTEXT, BODY, NOTE = 20, 13, 12, 11
LINE_SPACING = 1.4
STAMP_COLOUR = "#b42318"
FILE_FORMATS = ("png", "svg", "pdf")
# Words stay text in SVG and PDF (TrueType embedded), so a figure's labels can be searched, copied and edited.
# Each image stays itself in SVG and PDF (the map's cells apart from the photo), not merged into one raster.
TEXT_AS_TEXT = {"svg.fonttype": "none", "pdf.fonttype": 42, "font.family": "DejaVu Sans", "image.composite_image": False,
                # Light compression: an export of every view stays within seconds, the files a little larger.
                "pdf.compression": 1}
PNG_COMPRESSION = 1


@dataclass(frozen=True)
class Heading:
    """What names a figure: its title, the context line (image, model, weights, prediction) and a stamp that
    cautions where the weights are untrained or the image lies outside what the model knows ("" for none)."""

    title: str
    context: str
    stamp: str = ""


Content = render.Picture | render.Tiles | np.ndarray | go.Figure


@dataclass(frozen=True)
class Exhibit:
    """One exported view: its catalogue name (the file's stem), heading and content: a map picture, tiles, a
    photo, or a plot."""

    name: str
    heading: Heading
    content: Content
    columns: int = 8  # tiles across, for tiles


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 image as a PNG file."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the figure as PNG")
    return encoded.tobytes()


@lru_cache(maxsize=4096)
def character_width(character: str, weight: str) -> float:
    """A character's advance in DejaVu Sans at 1 point, in points (measured once)."""
    return text_to_path.get_text_width_height_descent(
        character, FontProperties(family="DejaVu Sans", size=1, weight=weight), ismath=False)[0]


def text_width(text: str, size: float, weight: str = "normal") -> float:
    """How wide ``text`` is drawn at ``size`` points, in inches (advances summed, a margin for kerning)."""
    return 1.02 * size * sum(character_width(character, weight) for character in text) / 72


def wrapped(text: str, size: float, width: float, weight: str = "normal") -> list[str]:
    """``text`` in lines, word by word, each drawn no wider than ``width`` inches at ``size`` points."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}" if line else word
            if line and text_width(trial, size, weight) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def line_height(size: float) -> float:
    return size * LINE_SPACING / 72


# A block of the figure: its height in inches and how to draw it, given the figure and the block's top edge
# (inches from the figure's bottom).
Block = tuple[float, Callable[[Figure, float], None]]


def text_block(text: str, size: float, width: float = WIDTH - 2 * MARGIN, left: float = MARGIN,
               weight: str = "normal", colour: str = "#14181f") -> Block:
    lines = wrapped(text, size, width, weight)

    def draw(figure: Figure, top: float) -> None:
        for index, line in enumerate(lines):
            figure.text(left, top - (index + 0.8) * line_height(size), line, fontsize=size, weight=weight,
                        color=colour, transform=figure.dpi_scale_trans, va="baseline")
    return len(lines) * line_height(size), draw


def stamp_block(text: str) -> Block:
    """A caution in white on red across the figure."""
    lines = wrapped(text, BODY, WIDTH - 2 * MARGIN - 0.3, "bold")
    height = len(lines) * line_height(BODY) + 0.16

    def draw(figure: Figure, top: float) -> None:
        figure.add_artist(Rectangle((MARGIN, top - height), WIDTH - 2 * MARGIN, height, color=STAMP_COLOUR,
                                        transform=figure.dpi_scale_trans))
        for index, line in enumerate(lines):
            figure.text(MARGIN + 0.15, top - 0.08 - (index + 0.8) * line_height(BODY), line, fontsize=BODY,
                        weight="bold", color="white", transform=figure.dpi_scale_trans, va="baseline")
    return height, draw


def heading_blocks(heading: Heading) -> list[Block]:
    blocks = [text_block(heading.title, TITLE, weight="bold"), text_block(heading.context, CONTEXT, colour="#3d4451")]
    return blocks + ([stamp_block(heading.stamp)] if heading.stamp else [])


def image_axes(figure: Figure, top: float, left: float, width: float, height: float):
    figure_width, figure_height = figure.get_size_inches()
    axes = figure.add_axes((left / figure_width, (top - height) / figure_height, width / figure_width,
                            height / figure_height))
    axes.set_axis_off()
    return axes


def draw_marks(axes, marks: render.Marks, analysis: Analysis) -> None:
    """The picture's marks as vectors, in the picture's pixel coordinates."""
    geometry, trace = analysis.geometry, analysis.trace
    for region in marks.regions:
        segments = overlay.region_segments(region, geometry)
        axes.add_collection(LineCollection(segments, colors="black", linewidths=3.0, capstyle="projecting"))
        axes.add_collection(LineCollection(segments, colors="white", linewidths=1.5, capstyle="projecting"))
    if marks.home_grid:
        cells, homes = overlay.grid_segments(trace, geometry)
        axes.add_collection(LineCollection(cells, colors=keys.css_colour(overlay.GRID_LINE), linewidths=0.5))
        axes.add_collection(LineCollection(homes, colors="white", linewidths=1.6))
    for token in marks.home_cells:
        corners = geometry.model_to_original(np.array(overlay.home_box_on_input(trace, token, geometry.input_size),
                                                      dtype=float).reshape(2, 2))
        (x0, y0), (x1, y1) = corners
        for colour, width in (("black", 3.6), (keys.css_colour(render.HOME_COLOUR), 2.0)):
            # Above the outline (collections are drawn at zorder 2): the home cell stays in sight where they cross.
            axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=width,
                                     zorder=3))
    for text, x, y in marks.numbers:
        axes.text(x, y, text, ha="center", va="center", color="white", fontsize=NOTE, weight="bold", zorder=4,
                  bbox=dict(boxstyle="round,pad=0.12", facecolor="black", edgecolor="none", alpha=0.7))


def picture_block(image: np.ndarray, width: float, marks: render.Marks | None = None,
                  analysis: Analysis | None = None, left: float = MARGIN) -> Block:
    """An image ``width`` inches wide; a map picture's ``marks`` drawn over its plain copy as vectors."""
    shown = marks.plain if marks is not None else image
    height = width * shown.shape[0] / shown.shape[1]

    def draw(figure: Figure, top: float) -> None:
        axes = image_axes(figure, top, left, width, height)
        if marks is not None and marks.cells is not None and analysis is not None:
            # The photo, and over it the map at the trace's own resolution, stretched over what the model saw.
            axes.imshow(marks.photo, interpolation="none", extent=(0, shown.shape[1], shown.shape[0], 0))
            (x0, y0), (x1, y1) = analysis.geometry.model_to_original(
                np.array([(0, 0), analysis.geometry.input_size], dtype=float))
            axes.imshow(marks.cells, interpolation="none", extent=(x0, x1, y1, y0))
        else:
            axes.imshow(shown, interpolation="none", extent=(0, shown.shape[1], shown.shape[0], 0))
        if marks is not None and analysis is not None:
            draw_marks(axes, marks, analysis)
        axes.set_xlim(0, shown.shape[1])
        axes.set_ylim(shown.shape[0], 0)
    return height, draw


def bar_block(key: ColourKey, width: float, left: float, size: float = NOTE) -> Block:
    """A continuous key's bar, its two ends written under it (at ``size`` points) and its unit beside it."""
    bar_width = min(5.5, width * 0.55)
    low, high = key.ends()
    unit_left = left + bar_width + 0.2
    unit = wrapped(key.unit, size + 1, left + width - unit_left, "bold")
    height = max(0.22 + line_height(size) + 0.06, len(unit) * line_height(size + 1))
    colours = keys.bar_colours(key.colormap, 64) / 255.0

    def draw(figure: Figure, top: float) -> None:
        step = bar_width / len(colours)
        figure.add_artist(PatchCollection(
            [Rectangle((left + i * step, top - 0.22), step * 1.02, 0.22) for i in range(len(colours))],
            facecolors=colours, edgecolors="none", transform=figure.dpi_scale_trans))
        figure.add_artist(Rectangle((left, top - 0.22), bar_width, 0.22, fill=False, edgecolor="#9aa5b1",
                                        linewidth=0.6, transform=figure.dpi_scale_trans))
        baseline = top - 0.22 - 0.06 - 0.8 * line_height(size)
        figure.text(left, baseline, low, fontsize=size, transform=figure.dpi_scale_trans, va="baseline")
        figure.text(left + bar_width, baseline, high, fontsize=size, ha="right", transform=figure.dpi_scale_trans,
                    va="baseline")
        for index, line in enumerate(unit):
            figure.text(unit_left, top - (index + 0.8) * line_height(size + 1), line, fontsize=size + 1, weight="bold",
                        transform=figure.dpi_scale_trans, va="baseline")
    return height, draw


def swatch_block(key: ColourKey, width: float, left: float, size: float = NOTE) -> Block:
    """Named swatches (labels at ``size`` points), as many rows as they take; all of them, however many."""
    side, spacing = size * 0.016, 0.25
    places, x, row = [], left, 0
    for label, rgb in key.swatches:
        needed = side + 0.08 + text_width(label, size)
        if x > left and x + needed > left + width:
            x, row = left, row + 1
        places.append((x, row, label, rgb))
        x += needed + spacing
    unit = text_block(key.unit, size + 1, width, left, weight="bold")
    rows = (row + 1) if key.swatches else 0

    def draw(figure: Figure, top: float) -> None:
        unit[1](figure, top)
        for x, row, label, rgb in places:
            baseline = top - unit[0] - (row + 0.8) * line_height(size)
            figure.add_artist(Rectangle((x, baseline - 0.02), side, side, facecolor=np.array(rgb) / 255.0,
                                            edgecolor="#9aa5b1", linewidth=0.5, transform=figure.dpi_scale_trans))
            figure.text(x + side + 0.08, baseline, label, fontsize=size, transform=figure.dpi_scale_trans,
                        va="baseline")
    return unit[0] + rows * line_height(size), draw


def key_blocks(key: ColourKey | None, width: float = WIDTH - 2 * MARGIN, left: float = MARGIN,
               size: float = NOTE) -> list[Block]:
    """A key as vectors: its bar or swatches, and its note in full, at ``size`` points."""
    if key is None:
        return []
    blocks = [bar_block(key, width, left, size) if key.is_continuous else swatch_block(key, width, left, size)]
    if key.note:
        blocks.append(text_block(key.note, size, width, left, colour="#3d4451"))
    return blocks


def caption_lines(caption: str, size: float, width: float) -> list[str]:
    """A tile's caption in lines broken between its parts ("stage 1 · block 0 · half on 4%"), a part too long for
    a line broken between its words."""
    lines: list[str] = []
    for part in caption.split(" · "):
        trial = f"{lines[-1]} · {part}" if lines else part
        if lines and text_width(trial, size) <= width:
            lines[-1] = trial
        else:
            lines += wrapped(part, size, width)
    return lines


def row_image(images: Sequence[np.ndarray], tile_width: float) -> np.ndarray:
    """A row of tiles as one picture, white between them as wide as the figure's gap: one raster a row draws and
    saves much faster than one a tile."""
    height = max(image.shape[0] for image in images)
    gap = max(1, round(GAP / tile_width * images[0].shape[1]))
    parts = []
    for index, image in enumerate(images):
        column = np.full((height, image.shape[1], 3), 255, np.uint8)
        column[:image.shape[0]] = image
        parts += [column] + ([np.full((height, gap, 3), 255, np.uint8)] if index < len(images) - 1 else [])
    return np.concatenate(parts, axis=1)


def tiles_blocks(tiles: render.Tiles, columns: int) -> list[Block]:
    """Tiles in rows of ``columns``, each captioned under it, wrapped to its width."""
    columns = max(1, min(columns, len(tiles.tiles)))
    tile_width = (WIDTH - 2 * MARGIN - (columns - 1) * GAP) / columns
    blocks: list[Block] = []
    for start in range(0, len(tiles.tiles), columns):
        row = tiles.tiles[start:start + columns]
        image = row_image([tile.image for tile in row], tile_width)
        row_width = len(row) * tile_width + (len(row) - 1) * GAP
        image_height = row_width * image.shape[0] / image.shape[1]
        captions = [caption_lines(tile.caption, NOTE, tile_width) for tile in row]
        height = image_height + max(len(lines) for lines in captions) * line_height(NOTE)

        def draw(figure: Figure, top: float, image=image, row_width=row_width, captions=captions,
                 image_height=image_height) -> None:
            picture_block(image, row_width)[1](figure, top)
            for index, lines in enumerate(captions):
                left = MARGIN + index * (tile_width + GAP)
                for number, line in enumerate(lines):
                    figure.text(left, top - image_height - (number + 0.8) * line_height(NOTE), line, fontsize=NOTE,
                                transform=figure.dpi_scale_trans, va="baseline")
        blocks += [(height, draw), (GAP, lambda figure, top: None)]
    return blocks + key_blocks(tiles.key)


def plotly_colormap(colorscale) -> LinearSegmentedColormap:
    """A plotly colour scale ((position, colour) pairs) as a matplotlib colour map."""
    return LinearSegmentedColormap.from_list("plotly", [(float(position), colour) for position, colour in colorscale])


def title_of(part) -> str:
    return (part.title.text or "") if part is not None and part.title is not None else ""


def plot_block(plot: go.Figure, height: float = 5.2) -> Block:
    """A plot of the page, drawn from its plotly figure: bars (grouped where it holds several series) or a matrix,
    with its titles, axis titles, colour bar and notes."""
    bars = [trace for trace in plot.data if trace.type == "bar"]
    legend_width = 2.6 if len(bars) > 1 else 0.0  # the series' names beside the plot

    def draw(figure: Figure, top: float) -> None:
        axes = figure.add_axes(((MARGIN + 0.8) / WIDTH, (top - height + 0.7) / figure.get_figheight(),
                                (WIDTH - 2 * MARGIN - 1.6 - legend_width) / WIDTH, (height - 1.0) / figure.get_figheight()))
        layout = plot.layout
        for trace in plot.data:
            if trace.type == "heatmap":
                image = axes.imshow(np.asarray(trace.z, dtype=float), cmap=plotly_colormap(trace.colorscale),
                                    interpolation="none", aspect="equal")
                axes.set_anchor("W")  # a square matrix at the left, under the title, not adrift in the width
                colorbar = figure.colorbar(image, ax=axes, fraction=0.04)
                colorbar.set_label(title_of(trace.colorbar), fontsize=NOTE)
        for index, trace in enumerate(bars):
            labels = [str(x).replace("<br>", "\n") for x in trace.x]
            positions = np.arange(len(labels), dtype=float)
            bar_width = 0.8 / len(bars)
            offset = (index - (len(bars) - 1) / 2) * bar_width if len(bars) > 1 else 0.0
            colours = trace.marker.color
            axes.bar(positions + offset, np.asarray(trace.y, dtype=float), width=bar_width * (0.9 if len(bars) > 1 else 1),
                     color=list(colours) if isinstance(colours, (list, tuple)) else colours, label=trace.name)
            if len(bars) > 1 or not str(labels[0]).isdigit():
                axes.set_xticks(positions, labels, fontsize=NOTE)
            axes.set_xlim(-0.6, len(labels) - 0.4)
        if len(bars) > 1:
            axes.legend(title=title_of(layout.legend), fontsize=NOTE, title_fontsize=NOTE, frameon=False,
                        loc="upper left", bbox_to_anchor=(1.02, 1.0))
        if layout.yaxis.range is not None:
            axes.set_ylim(*layout.yaxis.range)
        axes.set_xlabel(title_of(layout.xaxis), fontsize=BODY)
        axes.set_ylabel(title_of(layout.yaxis), fontsize=BODY)
        axes.tick_params(labelsize=NOTE)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        for note in layout.annotations:
            axes.text(0.5, 0.5, note.text, transform=axes.transAxes, ha="center", fontsize=BODY)
    return height, draw


def content_blocks(exhibit: Exhibit, analysis: Analysis) -> list[Block]:
    content = exhibit.content
    if isinstance(content, render.Picture):
        if content.image is None:
            return [text_block(content.message, BODY)]
        blocks = [picture_block(content.image, picture_width(content.image), content.marks, analysis)]
        message = [text_block(content.message, BODY)] if content.message else []
        return blocks + message + key_blocks(content.key)
    if isinstance(content, render.Tiles):
        return tiles_blocks(content, exhibit.columns)
    if isinstance(content, go.Figure):
        title = title_of(content.layout)
        said = [] if title.lower() in exhibit.heading.title.lower() else [text_block(title, BODY, weight="bold")]
        return said + [plot_block(content)]
    return [picture_block(content, picture_width(content))]


def picture_width(image: np.ndarray) -> float:
    """As wide as the figure, or narrower for a tall picture, so that it fits a slide or a page."""
    return min(WIDTH - 2 * MARGIN, 7.5 * image.shape[1] / image.shape[0])


def laid_out(blocks: Sequence[Block], width: float = WIDTH) -> Figure:
    """A figure holding ``blocks`` one under another, with margins above and below."""
    height = MARGIN * 2 + sum(size for size, _ in blocks) + GAP * (len(blocks) - 1)
    figure = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    top = height - MARGIN
    for size, draw in blocks:
        draw(figure, top)
        top -= size + GAP
    return figure


def exhibit_figure(exhibit: Exhibit, analysis: Analysis) -> Figure:
    with matplotlib.rc_context(TEXT_AS_TEXT):
        return laid_out(heading_blocks(exhibit.heading) + content_blocks(exhibit, analysis))


def saved(figure: Figure, file_format: str) -> bytes:
    """The figure as a PNG, SVG or PDF file."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(TEXT_AS_TEXT):
        figure.savefig(buffer, format=file_format, dpi=DPI, facecolor="white",
                       metadata={"Creator": "Dual-ViT Explorer"} if file_format != "png" else None,
                       **({"pil_kwargs": {"compress_level": PNG_COMPRESSION}} if file_format == "png" else {}))
    return buffer.getvalue()


def exhibit_files(exhibit: Exhibit, analysis: Analysis, formats: Sequence[str] = FILE_FORMATS) -> dict[str, bytes]:
    """The exhibit's files by name (``<view name>.<format>``)."""
    figure = exhibit_figure(exhibit, analysis)
    return {f"{exhibit.name}.{file_format}": saved(figure, file_format) for file_format in formats}
