"""Animations for a lecture: a token through every block, and the mean over tokens through the stages, as GIF and
MP4. One frame per map, each headed with its block and token and carrying its key (figure_files lays it out),
shown for about a second, the last one held so that the end can be read."""
from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from analysis import trace_maths
from viewer import figure_files, render
from viewer.analysed import Analysis
from viewer.figure_files import Heading
from viewer.levels import StoredMap

FRAME_MILLISECONDS = 1000  # about one block a second: time to read the block's name and find the token
HOLD_MILLISECONDS = 3000  # the last frame
FRAME_DPI = 60  # 720 pixels wide: a GIF of a dozen frames stays a few megabytes
ANIMATIONS = ("token_through_blocks", "mean_through_stages")


def frame_pictures(analysis: Analysis, series: Sequence[tuple[trace_maths.BlockRef, np.ndarray]], style: render.Style,
                   token: int | None) -> list[render.Picture]:
    trace = analysis.trace
    pictures = [render.draw_one(analysis, StoredMap.of_attention(values, trace_maths.uniform_weight(trace, ref)), style)
                for ref, values in series]
    return [render.with_home_cell(picture, analysis, token) for picture in pictures] if token is not None else pictures


def frame_exhibits(analysis: Analysis, series: Sequence[tuple[trace_maths.BlockRef, np.ndarray]],
                   style: render.Style, token: int | None, heading: Heading) -> list[figure_files.Exhibit]:
    """One headed, keyed figure per map of ``series``, its title naming the block and the token."""
    subject = f"token {token}" if token is not None else "mean over tokens"
    return [figure_files.Exhibit(f"frame_{index}", Heading(
                f"{ref.label}: {subject} · half of the mass on {render.share(trace_maths.area_holding(values, 0.5))}",
                heading.context, heading.stamp), picture)
            for index, ((ref, values), picture) in enumerate(zip(series, frame_pictures(analysis, series, style, token)))]


def frames(analysis: Analysis, exhibits: Sequence[figure_files.Exhibit]) -> list[np.ndarray]:
    """(H, W, 3) uint8 frames of one size (white below a shorter one), one per exhibit, at ``FRAME_DPI``."""
    drawn = []
    for exhibit in exhibits:
        figure = figure_files.exhibit_figure(exhibit, analysis)
        figure.set_dpi(FRAME_DPI)
        figure.canvas.draw()
        drawn.append(np.asarray(figure.canvas.buffer_rgba())[..., :3].copy())
    height = max(frame.shape[0] for frame in drawn)
    height += height % 2  # H.264 in 4:2:0 needs even sides
    width = max(frame.shape[1] for frame in drawn)
    width += width % 2
    padded = []
    for frame in drawn:
        canvas = np.full((height, width, 3), 255, np.uint8)
        canvas[:frame.shape[0], :frame.shape[1]] = frame
        padded.append(canvas)
    return padded


def durations(count: int) -> list[int]:
    return [FRAME_MILLISECONDS] * (count - 1) + [HOLD_MILLISECONDS]


def gif_bytes(pictures: Sequence[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    # One adaptive palette a frame, found by the fast octree rather than Pillow's default median cut.
    first, *rest = [Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE) for frame in pictures]
    first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=durations(len(pictures)), loop=0,
               optimize=False)
    return buffer.getvalue()


def mp4_bytes(pictures: Sequence[np.ndarray]) -> bytes:
    """H.264 (plays in browsers and slide software), one frame per picture; the last frame's packet lasts
    ``HOLD_MILLISECONDS`` rather than repeating it."""
    buffer = io.BytesIO()
    milliseconds = Fraction(1, 1000)
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = milliseconds
        # No B-frames: packets come in the frames' order, so the last one is the last frame, whose duration the
        # container takes as the hold.
        stream.codec_context.max_b_frames = 0
        stream.options = {"crf": "18"}
        packets = []
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame.pts, frame.time_base = index * FRAME_MILLISECONDS, milliseconds
            packets += stream.encode(frame)
        packets += stream.encode()
        packets[-1].duration = HOLD_MILLISECONDS
        for packet in packets:
            container.mux(packet)
    return buffer.getvalue()


def animation_files(analysis: Analysis, style: render.Style, fusion: str, token: int,
                    heading: Heading) -> dict[str, bytes]:
    """The two animations, each as GIF and MP4, by file name."""
    trace = analysis.trace
    sequences = {"token_through_blocks": (trace_maths.token_filmstrip(trace, token, fusion), token),
                 "mean_through_stages": (trace_maths.stage_overview(trace, None, fusion), None)}
    files = {}
    for name, (series, shown_token) in sequences.items():
        pictures = frames(analysis, frame_exhibits(analysis, series, style, shown_token, heading))
        files[f"{name}.gif"] = gif_bytes(pictures)
        files[f"{name}.mp4"] = mp4_bytes(pictures)
    return files
