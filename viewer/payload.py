"""What the browser receives of one analysis: every map the live views draw, as bytes, once.

The live views (``viewer/static/``) colour and draw; everything they show is computed here, from the
trace, with the functions the server's own pictures use (:mod:`viewer.render`, :mod:`viewer.levels`): the
maps as one byte a cell with their scale's top, their mass levels (the half-mass outline and the mass
view), the owners and their colours, each pixel's reads and top tokens, each token's statistics, the
opening block and the token the tour follows. Head means come with the analysis; another fusion of one
block (a single head, the maximum, the minimum) is asked for when chosen (:func:`block_payload`).

The format, version 1: a gzip stream of the bytes ``DVX1``, the header's length (uint32, little-endian),
the header (JSON), zeros to a multiple of 8, then the arrays, each at an offset (from the end of the
padding) that is a multiple of 8. The header's ``arrays`` gives each array's dtype, shape and offset;
``meta`` holds the rest.
"""
from __future__ import annotations

import gzip
import io
import json
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from analysis import trace_maths
from model.map_names import STAGES
from viewer import keys, levels, overlay, render
from viewer.analysed import Analysis

MAGIC = b"DVX1"
VERSION = 1
ALIGN = 8
PHOTO_QUALITY = 88
# zlib's fastest level: it packs a dualvit_s analysis in a fifth of the time of level 6, 10% larger.
COMPRESSION = 1
# Threads building a payload's blocks: on two cores a dualvit_s payload takes 165 ms with two, 250 ms with one.
BUILDERS = 2


class Writer:
    """Arrays and metadata gathered under names, then packed into one gzip stream."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, name: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        if array.dtype not in (np.uint8, np.uint16, np.int16, np.int32, np.float32):
            raise TypeError(f"{name}: the browser reads uint8, uint16, int16, int32 and float32, not {array.dtype}")
        self.arrays[name] = array

    def pack(self, meta: dict[str, Any]) -> bytes:
        index, offset, chunks = {}, 0, []
        for name, array in self.arrays.items():
            index[name] = {"dtype": str(array.dtype), "shape": list(array.shape), "offset": offset}
            data = array.tobytes()
            chunks.append(data + b"\0" * (-len(data) % ALIGN))
            offset += len(chunks[-1])
        header = json.dumps({"version": VERSION, "meta": meta, "arrays": index}, separators=(",", ":")).encode()
        start = MAGIC + struct.pack("<I", len(header)) + header
        body = io.BytesIO()
        with gzip.GzipFile(fileobj=body, mode="wb", compresslevel=COMPRESSION, mtime=0) as stream:
            stream.write(start + b"\0" * (-len(start) % ALIGN))
            for chunk in chunks:
                stream.write(chunk)
        return body.getvalue()


def read(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a payload (the reader the browser mirrors; for tests and tools)."""
    raw = gzip.decompress(data)
    if raw[:4] != MAGIC:
        raise ValueError("not an explorer payload")
    (length,) = struct.unpack("<I", raw[4:8])
    header = json.loads(raw[8:8 + length])
    start = 8 + length + (-(8 + length) % ALIGN)
    arrays = {name: np.frombuffer(raw, dtype=np.dtype(spec["dtype"]), count=int(np.prod(spec["shape"])),
                                  offset=start + spec["offset"]).reshape(spec["shape"])
              for name, spec in header["arrays"].items()}
    return header["meta"], arrays


def index_type(count: int) -> np.dtype:
    return np.dtype(np.uint8) if count <= 256 else np.dtype(np.uint16)


def add_stored(writer: Writer, name: str, maps: list[levels.StoredMap]) -> None:
    """Maps of one grid as three arrays: their bytes (K, cells), tops (K,) and mass levels (K, cells)."""
    writer.add(f"{name}/cells", np.stack([stored.cells.ravel() for stored in maps]))
    writer.add(f"{name}/tops", np.array([stored.top for stored in maps], np.float32))
    writer.add(f"{name}/mass", np.stack([stored.mass.ravel() for stored in maps]))
    writer.add(f"{name}/totals", np.array([stored.total for stored in maps], np.float32))


def statistics(maps: np.ndarray) -> np.ndarray:
    """(M, 7) float32 per token: entropy, normalised entropy, peak, peak row, peak column, the share of the
    pixels holding half of its mass, its total mass on pixels (as :func:`analysis.trace_maths.token_statistics`)."""
    stats = trace_maths.map_statistics(maps)
    return np.stack([stats[name] for name in ("entropy", "normalised_entropy", "peak", "peak_row", "peak_column",
                                              "area_50", "mass")], axis=1).astype(np.float32)


def owner_labels(analysis: Analysis, owner: np.ndarray, largest: list[tuple[int, int]]) -> list[list[int]]:
    """[token, x, y] (display pixels) for the ``largest`` owners (:func:`viewer.render.largest_owners`) whose region
    holds its number, at the point of the
    region farthest from any other owner (as :func:`viewer.overlay.number_regions` places them on the server's
    picture), found with one distance transform on the coarse owner lookup the page hovers over."""
    lookup = render.owner_lookup(owner, analysis.geometry)
    inside = np.zeros(lookup.shape, bool)  # the picture's edge and every change of owner count as outside
    inside[1:-1, 1:-1] = ((lookup[1:-1, 1:-1] == lookup[:-2, 1:-1]) & (lookup[1:-1, 1:-1] == lookup[2:, 1:-1])
                         & (lookup[1:-1, 1:-1] == lookup[1:-1, :-2]) & (lookup[1:-1, 1:-1] == lookup[1:-1, 2:]))
    depth = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5)
    shape = analysis.display.shape
    scale_x, scale_y = shape[1] / lookup.shape[1], shape[0] / lookup.shape[0]
    labels = []
    for token, _ in largest:
        region_depth = np.where(lookup == token, depth, -1.0)
        y, x = np.unravel_index(int(np.argmax(region_depth)), region_depth.shape)
        if overlay.number_fits(str(token), float(region_depth[y, x]) * scale_x, shape):
            labels.append([token, round((x + 0.5) * scale_x), round((y + 0.5) * scale_y)])
    return labels


def block_arrays(writer: Writer, analysis: Analysis, ref: trace_maths.BlockRef, fusion: str, name: str) -> dict:
    """One block's arrays under ``name``: its token maps, what each pixel reads, the owners, the token
    self-attention and the mean over tokens; returns what the header says of it."""
    trace = analysis.trace
    values = trace_maths.token_maps(trace, ref.stage, ref.block, fusion)
    uniform = trace_maths.uniform_weight(trace, ref)
    add_stored(writer, f"{name}/tokens", levels.StoredMap.stack_of_attention(values, uniform))
    mean = values.mean(axis=0)
    add_stored(writer, f"{name}/mean", [levels.StoredMap.of_attention(mean, uniform)])
    writer.add(f"{name}/stats", statistics(values))
    reads = trace_maths.pixel_to_token_rows(trace, ref, fusion, 0)  # (N, M)
    tops = np.maximum(reads.max(axis=1), np.finfo(np.float32).tiny).astype(np.float32)
    writer.add(f"{name}/reads", levels.quantise(reads, tops[:, None].astype(np.float64)))
    writer.add(f"{name}/readTops", tops)
    kind = index_type(trace.num_semantic)
    order = trace_maths.descending_order(reads)
    writer.add(f"{name}/topTokens", order[:, :render.TOP_TOKENS].astype(kind))
    grid = trace.grid(ref.stage)
    owner = order[:, 0].reshape(grid.height, grid.width)  # what each pixel reads most, as trace_maths.ownership
    writer.add(f"{name}/owners", owner.ravel().astype(kind))
    writer.add(f"{name}/ownerColours", render.owner_colours(trace, owner).astype(np.uint8))
    matrix = trace_maths.semantic_self_matrix(trace, ref.stage, ref.block, trace_maths.fusion_in(trace, ref, fusion))
    self_tops = np.maximum(matrix.max(axis=1), np.finfo(np.float32).tiny).astype(np.float32)
    writer.add(f"{name}/self", levels.quantise(matrix, self_tops[:, None].astype(np.float64)))
    writer.add(f"{name}/selfTops", self_tops)
    largest = render.largest_owners(owner)
    return {"name": name, "fusion": fusion, "uniform": uniform, "meanArea50": trace_maths.area_holding(mean, 0.5),
            "readsUniform": trace_maths.reads_uniform_weight(trace, ref),
            "labels": owner_labels(analysis, owner, largest), "largestOwners": [[token, cells] for token, cells in largest],
            "ownedBy": int(len(np.unique(owner)))}


def geometry_arrays(writer: Writer, analysis: Analysis) -> dict:
    """The grey backdrops, the cells under each picture pixel, the home boxes and the photo."""
    trace = analysis.trace
    pictures = {"display": (analysis.display, analysis.geometry),
                "thumbnail": (analysis.thumbnail, analysis.thumbnail_geometry)}
    said: dict[str, Any] = {}
    for size, (image, geometry) in pictures.items():
        writer.add(f"{size}/backdrop", overlay.backdrop(image)[..., 0])
        for stage in STAGES:
            rows, columns = overlay.cell_lookup(tuple(trace.grid(stage)), geometry)
            writer.add(f"{size}/cells{stage}/rows", rows)
            writer.add(f"{size}/cells{stage}/columns", columns)
        writer.add(f"{size}/homes", np.array([overlay.home_box_pixels(trace, token, geometry)
                                              for token in range(trace.num_semantic)], np.int32))
        said[size] = {"width": image.shape[1], "height": image.shape[0], "lineWidth": overlay.line_width(image),
                      "crops": geometry.crops, "labelScale": overlay.number_style(image.shape)[1]}
    ok, photo = cv2.imencode(".jpg", cv2.cvtColor(analysis.display, cv2.COLOR_RGB2BGR),
                             [cv2.IMWRITE_JPEG_QUALITY, PHOTO_QUALITY])
    writer.add("photo", np.frombuffer(photo.tobytes(), np.uint8))
    return said


def drawing_tables(writer: Writer) -> dict:
    """The colour maps, mass bands, owner palette and dimming as the server draws them."""
    for name in overlay.COLORMAPS:
        writer.add(f"colormap/{name}", overlay.colormap_table(name))
        writer.add(f"bands/{name}", np.array(overlay.band_colours(name, len(overlay.BAND_WEIGHTS)), np.uint8))
        writer.add(f"ramp/{name}", np.array(keys.ramp(name), np.uint8))
    writer.add("ownerPalette", np.array(overlay.OWNER_PALETTE, np.uint8))
    writer.add("dimming", overlay.dimming_table())
    return {"colormaps": list(overlay.COLORMAPS), "bandWeights": list(overlay.BAND_WEIGHTS),
            "topAtLeast": levels.TOP_AT_LEAST, "massShares": list(trace_maths.MASS_SHARES),
            "homeColour": list(render.HOME_COLOUR),
            "notes": {"tile": render.TILE_NOTE, "halfMass": render.HALF_MASS_NOTE, "uniform": render.UNIFORM_NOTE,
                      "cropped": render.CROPPED_NOTE, "spread": render.SPREAD_NOTE, "home": render.HOME_NOTE,
                      "ownership": render.OWNERSHIP_NOTE, "massBands": render.MASS_BANDS_NOTE}}


def analysis_payload(analysis: Analysis) -> bytes:
    """Everything the live views draw of one analysis, head means throughout."""
    trace = analysis.trace
    writer = Writer()
    refs = [ref for ref in trace_maths.blocks(trace) if trace_maths.has_token_maps(trace, ref)]
    parts = [Writer() for _ in refs]
    with ThreadPoolExecutor(BUILDERS) as pool:  # numpy's sorts and OpenCV let go of the GIL
        built = list(pool.map(lambda number: block_arrays(parts[number], analysis, refs[number], "mean",
                                                          f"block{number}"), range(len(refs))))
    blocks = []
    for part, ref, said in zip(parts, refs, built):
        writer.arrays.update(part.arrays)
        blocks.append({"label": ref.label, "stage": ref.stage, "block": ref.block, "kind": ref.kind,
                       "fusions": trace_maths.fusion_choices(trace, ref.stage), "mean": said})
    for fusion in trace_maths.FUSIONS:
        add_stored(writer, f"class/{fusion}", [render.class_map(trace, fusion)])
    last_dual = [ref for ref in refs if ref.kind == "dual"][-1]
    meta = {
        "tokens": trace.num_semantic, "homeGrid": list(trace.semantic_grid),
        "grids": {str(stage): list(trace.grid(stage)) for stage in STAGES},
        "blocks": blocks, "opening": trace_maths.default_block(trace).label,
        "lead": trace_maths.lead_token(trace, last_dual), "classUniform": trace_maths.class_uniform_weight(trace),
        "quadrants": [[ref.label, shares] for ref, shares in trace_maths.merge_quadrants(trace)],
        "pictures": geometry_arrays(writer, analysis), "resolution": analysis.resolution,
        **drawing_tables(writer),
    }
    return writer.pack(meta)


def block_payload(analysis: Analysis, ref: trace_maths.BlockRef, fusion: str) -> bytes:
    """One block's arrays for another fusion of its heads (``fusion`` checked by the caller)."""
    writer = Writer()
    said = block_arrays(writer, analysis, ref, fusion, "block")
    return writer.pack({"label": ref.label, "block": said})
