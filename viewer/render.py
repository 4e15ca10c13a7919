"""Each view of the explorer drawn from an analysis: images, captions and figures, no Gradio.

The page (viewer.ui) and the headless export (viewer.export) both draw through these functions,
so a figure in teaching material is exactly what the page shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from viewer import figures, overlay, views
from viewer.service import Analysis

TOP_TOKENS = 4

Captioned = list[tuple[np.ndarray, str]]


@dataclass(frozen=True)
class Style:
    colormap: str = "inferno"
    opacity: float = 0.6


@dataclass(frozen=True)
class TokenDetail:
    image: np.ndarray
    statistics: views.TokenStatistics
    filmstrip: Captioned


@dataclass(frozen=True)
class PixelView:
    marked: np.ndarray
    reads: np.ndarray
    reads_figure: go.Figure
    top_tokens: Captioned
    ownership: np.ndarray


@dataclass(frozen=True)
class StagesView:
    stages: Captioned
    class_attention: np.ndarray
    semantic_self_figure: go.Figure
    merge_quadrants_figure: go.Figure


def draw(analysis: Analysis, values: np.ndarray, style: Style, vrange: tuple[float, float] | None = None,
         small: bool = False) -> np.ndarray:
    """The map over the display copy, or over the thumbnail (``small``) for galleries."""
    image, geometry = (analysis.thumbnail, analysis.thumbnail_geometry) if small else \
        (analysis.display, analysis.geometry)
    return overlay.overlay(image, values, geometry, colormap=style.colormap, opacity=style.opacity, vrange=vrange)


def draw_series(analysis: Analysis, series: list[tuple[views.BlockRef, np.ndarray]], style: Style) -> Captioned:
    """Small overlays on one shared colour scale, captioned with their block."""
    vrange = views.shared_range([values for _, values in series])
    return [(draw(analysis, values, style, vrange, small=True), ref.label) for ref, values in series]


def token_gallery(analysis: Analysis, block: views.BlockRef, fusion: str, style: Style) -> Captioned:
    maps = views.token_maps(analysis.trace, block.stage, block.block, fusion)
    vrange = views.shared_range(list(maps))
    return [(draw(analysis, token_map, style, vrange, small=True), f"token {index}")
            for index, token_map in enumerate(maps)]


def token_detail(analysis: Analysis, block: views.BlockRef, fusion: str, style: Style, token: int) -> TokenDetail:
    trace = analysis.trace
    token_map = views.token_maps(trace, block.stage, block.block, fusion)[token]
    image = overlay.home_box(draw(analysis, token_map, style), trace, token, analysis.geometry)
    filmstrip = draw_series(analysis, views.token_filmstrip(trace, token, fusion), style)
    return TokenDetail(image, views.token_statistics(trace, token_map, token), filmstrip)


def centre_of(analysis: Analysis) -> tuple[float, float]:
    height, width = analysis.display.shape[:2]
    return width / 2, height / 2


def pixel_view(analysis: Analysis, block: views.BlockRef, fusion: str, style: Style,
               point: tuple[float, float] | None) -> PixelView:
    """``point`` in display-image pixels (None: the centre)."""
    trace = analysis.trace
    point = tuple(point) if point else centre_of(analysis)
    model_point = analysis.geometry.original_to_model(np.array(point, dtype=float))
    reads = views.pixel_reads(trace, block.stage, block.block, tuple(model_point), fusion)
    maps = views.token_maps(trace, block.stage, block.block, fusion)
    top = np.argsort(-reads)[:TOP_TOKENS]
    vrange = views.shared_range([maps[index] for index in top])
    top_tokens = [(draw(analysis, maps[index], style, vrange, small=True), f"token {index}: {reads[index]:.2f}")
                  for index in top]
    owner, confidence = views.ownership(trace, block.stage, block.block, fusion)
    return PixelView(
        marked=overlay.mark_point(analysis.display, point),
        reads=reads,
        reads_figure=figures.pixel_reads_figure(reads, top_k=TOP_TOKENS),
        top_tokens=top_tokens,
        ownership=overlay.ownership_overlay(analysis.display, owner, confidence, analysis.geometry,
                                            opacity=style.opacity),
    )


def stages_view(analysis: Analysis, block: views.BlockRef, fusion: str, style: Style,
                token: int | None) -> StagesView:
    trace = analysis.trace
    stages = draw_series(analysis, views.stage_overview(trace, token, fusion), style)
    class_fusion = fusion if fusion in views.FUSIONS else "mean"  # the class block's heads are its own
    class_attention = draw(analysis, views.class_attention_map(trace, class_fusion), style)
    dual_block = block if block.kind == "dual" else views.blocks(trace)[0]
    matrix = views.semantic_self_matrix(trace, dual_block.stage, dual_block.block,
                                        views.fusion_in(trace, dual_block, fusion))
    return StagesView(
        stages=stages,
        class_attention=class_attention,
        semantic_self_figure=figures.semantic_self_figure(matrix, f"semantic self-attention, {dual_block.label}"),
        merge_quadrants_figure=figures.merge_quadrants_figure(views.merge_quadrants(trace)),
    )


@dataclass(frozen=True)
class ExplanationView:
    image: np.ndarray | None
    tokens: Captioned
    figure: go.Figure | None


TOP_IMPORTANT_TOKENS = 8


def explanation_view(analysis: Analysis, method: str, result: np.ndarray, style: Style, stage: int) -> ExplanationView:
    """An attribution map drawn on the image, or, for token importance, the most important tokens."""
    if method != "token_importance":
        return ExplanationView(draw(analysis, result, style), [], None)
    trace = analysis.trace
    last_block = [ref for ref in views.blocks(trace) if ref.stage == stage][-1]
    maps = views.token_maps(trace, stage, last_block.block, "mean")
    ranked = [int(index) for index in np.argsort(-result)[:TOP_IMPORTANT_TOKENS]]
    vrange = views.shared_range([maps[index] for index in ranked])
    tokens = [(draw(analysis, maps[index], style, vrange, small=True), f"token {index}: {result[index]:+.3f}")
              for index in ranked]
    return ExplanationView(None, tokens, figures.token_importance_figure(result))


def statistics_markdown(token: int, block: views.BlockRef, stats: views.TokenStatistics) -> str:
    return (f"**Token {token}**, {block.label}  \n"
            f"home cell (row, column): {stats.home} · peak {stats.peak:.3f} at cell {stats.peak_cell}  \n"
            f"entropy {stats.entropy:.2f} nats ({stats.normalised_entropy:.0%} of uniform) · "
            f"half of its mass lies on {stats.area_50:.0%} of the pixels · total mass on pixels {stats.mass:.2f}")


def contact_sheet(detail: TokenDetail, pixels: PixelView, stages: StagesView, size: int = 320) -> np.ndarray:
    """One PNG-ready image of the main views, labelled."""
    images = [detail.image, pixels.ownership, stages.class_attention] + [image for image, _ in stages.stages]
    labels = ["selected token", "ownership", "class attention"] + [label for _, label in stages.stages]
    return overlay.tile(images, columns=4, labels=labels, size=size)
