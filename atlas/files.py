"""An atlas on disk: columnar Parquet files, the examples' thumbnails, and what it was built from.

    meta.json           source, model, weights (SHA-256), resolution; each block's summary (how many tokens
                        follow objects, stay near home, or neither)
    tokens.parquet      one row per block and token: near-home share and lift, mean distance from home, spread,
                        share of mass on objects and on each class, its role
    examples.parquet    each token's top images: score (the crop's share of its mass), the crop's box (model-input
                        pixels), the token's map on it (uint8 over its peak)
    class_maps.parquet  each token's mean map per class, on the home grid (a labelled folder; scenes have masks)
    images.parquet      the example images: number, name, classes
    thumbs/N.jpg        each example image as the model saw it
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas import statistics
from atlas.statistics import BlockLayout, Tally
from model.preprocess import plan_geometry

# A token "follows objects" where its mass on objects stands out more than its mass at home (and at least this
# many times what uniform attention would put there); it "stays near home" the other way round.
LIFT = 1.5
ROLES = ("follows objects", "stays near home", "neither")


def lift(share: np.ndarray, area: np.ndarray | float) -> np.ndarray:
    """How many times more mass than uniform attention would put there."""
    return share / np.maximum(area, 1e-12)


def roles(object_lift: np.ndarray, home_lift: np.ndarray) -> list[str]:
    semantic = (object_lift >= LIFT) & (object_lift > home_lift)
    positional = (home_lift >= LIFT) & ~semantic
    return [ROLES[0] if s else ROLES[1] if p else ROLES[2] for s, p in zip(semantic, positional)]


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def token_rows(layouts: list[BlockLayout], tally: Tally, has_masks: bool) -> tuple[pa.Table, list[dict]]:
    columns: dict[str, list] = {name: [] for name in (
        "block", "stage", "block_index", "kind", "token", "images", "home_share", "home_lift", "home_distance",
        "spread", "object_share", "object_lift", "class_share", "role")}
    summaries = []
    object_area = tally.object_area / max(tally.images, 1)
    for layout, block in zip(layouts, tally.blocks):
        tokens = len(block.mass)
        home_share = ratio(block.home_mass, block.mass)
        home_lift = lift(home_share, layout.home_area)
        object_share = ratio(block.object_mass, block.mass) if has_masks else np.full(tokens, np.nan)
        object_lift = lift(object_share, object_area) if has_masks else np.full(tokens, np.nan)
        played = roles(np.nan_to_num(object_lift), home_lift)
        class_share = ratio(block.class_mass, block.class_total) if has_masks else np.full(block.class_mass.shape, np.nan)
        ref = layout.ref
        columns["block"] += [ref.label] * tokens
        columns["stage"] += [ref.stage] * tokens
        columns["block_index"] += [ref.block] * tokens
        columns["kind"] += [ref.kind] * tokens
        columns["token"] += list(range(tokens))
        columns["images"] += [tally.images] * tokens
        columns["home_share"] += home_share.tolist()
        columns["home_lift"] += home_lift.tolist()
        columns["home_distance"] += ratio(block.distance_mass, block.mass).tolist()
        columns["spread"] += (block.spread / max(tally.images, 1)).tolist()
        columns["object_share"] += object_share.tolist()
        columns["object_lift"] += object_lift.tolist()
        columns["class_share"] += class_share.tolist()
        columns["role"] += played
        summaries.append({"block": ref.label, "tokens": tokens, **{role: played.count(role) for role in ROLES},
                          "median_home_lift": float(np.median(home_lift)),
                          "median_object_lift": float(np.nanmedian(object_lift)) if has_masks else None})
    return pa.table(columns), summaries


def example_rows(layouts: list[BlockLayout], tally: Tally, input_size: tuple[int, int], names) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in (
        "block", "token", "rank", "image", "name", "score", "box", "grid", "cells", "peak")}
    height, width = input_size
    for layout, block in zip(layouts, tally.blocks):
        cell_height, cell_width = height / layout.grid[0], width / layout.grid[1]
        for token in range(len(block.mass)):
            for rank in range(block.scores.shape[1]):
                number = int(block.numbers[token, rank])
                if number < 0:
                    continue
                top, left, bottom, right = block.boxes[token, rank]
                columns["block"].append(layout.ref.label)
                columns["token"].append(token)
                columns["rank"].append(rank)
                columns["image"].append(number)
                columns["name"].append(names(number))
                columns["score"].append(float(block.scores[token, rank]))
                columns["box"].append([round(left * cell_width), round(top * cell_height), round(right * cell_width),
                                       round(bottom * cell_height)])
                columns["grid"].append(list(layout.grid))
                columns["cells"].append(block.cells[token, rank].tobytes())
                columns["peak"].append(float(block.peaks[token, rank]))
    return pa.table(columns)


def class_map_rows(layouts: list[BlockLayout], tally: Tally, class_names, has_masks: bool) -> pa.Table:
    columns: dict[str, list] = {"block": [], "token": [], "class": [], "images": [], "map": []}
    for layout, block in zip(layouts if not has_masks else [], tally.blocks):
        for cls, name in enumerate(class_names):
            count = int(tally.class_images[cls])
            if count == 0:
                continue
            for token in range(len(block.mass)):
                columns["block"].append(layout.ref.label)
                columns["token"].append(token)
                columns["class"].append(name)
                columns["images"].append(count)
                columns["map"].append((block.class_maps[token, cls] / count).tolist())
    columns["map"] = pa.array(columns["map"], type=pa.list_(pa.float32()))
    return pa.table(columns)


def thumbnail(plan, image):
    """The image as the model saw it (cut as the build's inputs are), small."""
    from atlas.build import THUMBNAIL_SIDE

    image = image.convert("RGB")
    geometry = plan_geometry(image.size, plan.resolution, plan.bundle.data_config.get("crop_pct", 1.0), "crop")
    return image.resize(geometry.resized_size).crop(geometry.crop_box).resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE))


def write(folder: Path, plan, tally: Tally, meta: dict) -> None:
    from atlas.build import BatchTallier

    tallier = BatchTallier(plan)
    tallier([0])  # the block layouts, from one capture
    layouts = tallier.layouts
    tokens, summaries = token_rows(layouts, tally, plan.source.has_masks)
    pq.write_table(tokens, folder / "tokens.parquet")
    examples = example_rows(layouts, tally, (plan.resolution, plan.resolution), plan.source.name)
    pq.write_table(examples, folder / "examples.parquet")
    pq.write_table(class_map_rows(layouts, tally, plan.source.class_names, plan.source.has_masks),
                   folder / "class_maps.parquet")
    # The example images: their names and classes (a token's examples say which classes it follows), thumbnails.
    numbers = sorted(set(examples.column("image").to_pylist()))
    thumbs = folder / "thumbs"
    thumbs.mkdir(exist_ok=True)
    classes = []
    for number in numbers:
        item = plan.source.item(number)
        classes.append([plan.source.class_names[cls] for cls in item.classes])
        thumbnail(plan, item.image).save(thumbs / f"{number}.jpg", quality=85)
    pq.write_table(pa.table({"image": numbers, "name": [plan.source.name(number) for number in numbers],
                             "classes": pa.array(classes, type=pa.list_(pa.string()))}), folder / "images.parquet")
    record = meta | {"built_images": tally.images, "blocks": summaries, "lift": statistics_note()}
    (folder / "meta.json").write_text(json.dumps(record, indent=2))


def statistics_note() -> str:
    return (f"roles: a token follows objects where its share of mass on objects is at least {LIFT:g} times their "
            f"share of the image and more than its home lift; it stays near home where its home share is at least "
            f"{LIFT:g} times the home cell's share of the image; top {statistics.TOP_K} examples by the share of its "
            f"mass in one crop {statistics.CROP_SHARE:g} of the image a side")
