"""Plotly figures for the explorer's charts (no UI code): numpy in, ``go.Figure`` out."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from analysis.trace_maths import QUADRANTS, BlockRef

HIGHLIGHT = "#e4572e"
MUTED = "#9aa5b1"
QUADRANT_COLOURS = dict(zip(QUADRANTS, ("#4c78a8", "#72b7b2", "#f58518", "#e45756")))
# Plain colours rather than template="plotly_white": plotly deep-copies a template into every
# figure, which took most of a view change's time.
GRID = "#e5e7eb"
LAYOUT = dict(margin=dict(l=60, r=20, t=50, b=50), paper_bgcolor="white", plot_bgcolor="white",
              xaxis=dict(gridcolor=GRID, zerolinecolor=GRID), yaxis=dict(gridcolor=GRID, zerolinecolor=GRID))


def top_indices(values: np.ndarray, k: int) -> set[int]:
    """The indices of the k largest values (ties broken by position)."""
    if k <= 0:
        return set()
    return {int(i) for i in np.argsort(-values, kind="stable")[:k]}


def token_bars(values: np.ndarray, top_k: int, title: str, value_title: str, value_format: str) -> go.Figure:
    """One bar per semantic token, the ``top_k`` largest highlighted."""
    values = np.asarray(values, dtype=np.float32).ravel()
    top = top_indices(values, top_k)
    tokens = np.arange(values.size)
    figure = go.Figure(go.Bar(
        x=tokens, y=values,
        marker_color=[HIGHLIGHT if token in top else MUTED for token in tokens],
        hovertemplate=f"token %{{x}}: %{{y:{value_format}}}<extra></extra>",
    ))
    figure.update_layout(title=title, xaxis_title="semantic token", yaxis_title=value_title, bargap=0.1, **LAYOUT)
    return figure


def named_bars(names: Sequence[str], values: Sequence[float], title: str, value_title: str) -> go.Figure:
    """One bar per name, the largest highlighted."""
    values = np.asarray(values, dtype=np.float64)
    top = top_indices(values, 1)
    figure = go.Figure(go.Bar(x=list(names), y=values,
                              marker_color=[HIGHLIGHT if index in top else MUTED for index in range(len(values))],
                              hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    figure.update_layout(title=title, yaxis_title=value_title, yaxis_tickformat=".0%", bargap=0.2, **LAYOUT)
    return figure


def pixel_reads_figure(reads: np.ndarray, top_k: int = 5) -> go.Figure:
    """How much the chosen pixel reads from each token; ``reads`` (M,) from :func:`analysis.trace_maths.pixel_reads`."""
    return token_bars(reads, top_k, f"What this pixel reads (top {min(top_k, np.size(reads))} highlighted)",
                      "attention weight", ".4f")


def semantic_self_figure(matrix: np.ndarray, title: str) -> go.Figure:
    """Heatmap of an (M, M) token-to-token attention matrix, query tokens down, key tokens across."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected an (M, M) matrix, got shape {matrix.shape}")
    figure = go.Figure(go.Heatmap(
        z=matrix, colorscale="Inferno", colorbar=dict(title="weight"),
        hovertemplate="query token %{y} → key token %{x}: %{z:.4f}<extra></extra>",
    ))
    figure.update_layout(title=title, xaxis_title="key token", yaxis_title="query token", **LAYOUT)
    # Matrix orientation: query token 0 on the top row.
    figure.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    return figure


def merge_quadrants_figure(quadrants: Sequence[tuple[BlockRef, dict[str, float]]]) -> go.Figure:
    """Grouped bars: for each Merge block, the mean attention share of each query group → key group."""
    # Each block's label on two lines, so that a phone's narrow plot keeps them level and whole.
    labels = [ref.label.replace(" · ", "<br>") for ref, _ in quadrants]
    figure = go.Figure([
        go.Bar(name=quadrant, x=labels, y=[shares[quadrant] for _, shares in quadrants],
               marker_color=QUADRANT_COLOURS[quadrant],
               hovertemplate=f"%{{x}}<br>{quadrant}: %{{y:.3f}}<extra></extra>")
        for quadrant in QUADRANTS
    ])
    # A title short enough for a phone; the labels name the blocks, so the x axis needs no title of its own.
    figure.update_layout(title="Where attention goes (head mean)", barmode="group",
                         yaxis_title="mean share of a query's attention", yaxis_range=[0, 1],
                         legend_title="query → key", **LAYOUT)
    figure.update_xaxes(tickangle=0)
    # Below the plot rather than beside it, so a phone keeps the bars wide.
    figure.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0))
    if not quadrants:
        figure.add_annotation(text="this trace holds no Merge-block map", showarrow=False,
                              xref="paper", yref="paper", x=0.5, y=0.5)
    return figure


def token_importance_figure(importance: np.ndarray, top_k: int = 8) -> go.Figure:
    """How much the class logit drops when each semantic token is ablated (M,)."""
    return token_bars(importance, top_k, "Drop of the class logit when each token is removed", "logit drop", "+.4f")
