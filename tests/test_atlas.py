"""The token atlas: built on one machine and on a two-node Ray cluster with the same files, its per-class shares
against the same figures computed here from single captures and object masks, an interrupted build resumed."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from analysis import trace_maths
from atlas import build as atlas_build
from atlas import files, statistics
from atlas.build import Spec
from model.capture import capture
from model.preprocess import preprocess
from training.scenes import CLASSES, heldout_seed, make_scene

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "assets" / "examples"
SCENES = 200
TABLES = ("tokens", "examples", "class_maps", "images")

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def plan():
    return Spec(f"scenes:{SCENES}", batch=32, device="cpu").open()


@pytest.fixture(scope="module")
def built(plan, tmp_path_factory) -> Path:
    return atlas_build.build(plan, tmp_path_factory.mktemp("atlas"))


def same_files(left: Path, right: Path) -> None:
    for table in TABLES:
        assert pq.read_table(left / f"{table}.parquet").equals(pq.read_table(right / f"{table}.parquet")), table
    assert json.loads((left / "meta.json").read_text()) == json.loads((right / "meta.json").read_text())
    assert sorted(path.name for path in (left / "thumbs").iterdir()) == \
        sorted(path.name for path in (right / "thumbs").iterdir())


def test_the_atlas_holds_every_token_of_every_block_and_what_it_was_built_from(built, plan):
    meta = json.loads((built / "meta.json").read_text())
    assert meta["images"] == meta["built_images"] == SCENES and meta["resolution"] == 224
    assert meta["architecture"] == "dualvit_nano" and len(meta["weights_sha256"]) == 64
    tokens = pq.read_table(built / "tokens.parquet").to_pandas()
    blocks = [block["block"] for block in meta["blocks"]]
    assert len(tokens) == len(blocks) * 64 and set(tokens["block"]) == set(blocks)
    assert all(sum(block[role] for role in files.ROLES) == 64 for block in meta["blocks"])
    assert tokens["home_share"].between(0, 1).all() and tokens["spread"].between(0, 1).all()
    examples = pq.read_table(built / "examples.parquet").to_pandas()
    assert (examples.groupby(["block", "token"]).size() == statistics.TOP_K).all()
    assert (examples.groupby(["block", "token"])["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    for box in examples["box"]:
        left, top, right, bottom = box
        assert 0 <= left < right <= 224 and 0 <= top < bottom <= 224
    thumbs = {int(path.stem) for path in (built / "thumbs").iterdir()}
    images = pq.read_table(built / "images.parquet").to_pandas()
    assert thumbs == set(examples["image"]) == set(images["image"])
    for number, classes in zip(images["image"][:20], images["classes"][:20]):  # the classes each example holds
        assert sorted(classes) == sorted(CLASSES[cls] for cls in set(make_scene(heldout_seed(number)).classes))


def block_cells(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The share of each cell of ``grid`` a (224, 224) mask covers: the mean of the cell's pixels."""
    height, width = mask.shape
    return mask.reshape(grid[0], height // grid[0], grid[1], width // grid[1]).mean(axis=(1, 3)).ravel()


def test_per_class_shares_equal_those_computed_from_single_captures_and_masks(built, plan):
    """Σ over the scenes holding class c of the token's mass on class-c objects, over Σ of its pixel mass on those
    scenes: from one capture per scene and the scene generator's own masks."""
    network = plan.bundle.network
    refs = None
    on_class, total = {}, {}
    for number in range(SCENES):
        scene = make_scene(heldout_seed(number))
        inputs, _ = preprocess(Image.fromarray(scene.image), plan.bundle.data_config, size=224)
        with torch.inference_mode():
            _, trace = capture(network, inputs)
        refs = refs or [ref for ref in trace_maths.blocks(trace) if trace_maths.has_token_maps(trace, ref)]
        for ref in refs:
            maps = trace_maths.token_maps(trace, ref.stage, ref.block).reshape(64, -1).astype(np.float64)
            grid = (trace.grid(ref.stage).height, trace.grid(ref.stage).width)
            covered = np.zeros((len(CLASSES), maps.shape[1]))
            for mask, cls in zip(scene.masks, scene.classes):
                covered[cls] += block_cells(mask.astype(np.float64), grid)
            for cls in set(scene.classes):
                on_class[ref.label, cls] = on_class.get((ref.label, cls), 0) + maps @ np.minimum(covered[cls], 1)
                total[ref.label, cls] = total.get((ref.label, cls), 0) + maps.sum(axis=1)
    tokens = pq.read_table(built / "tokens.parquet").to_pandas()
    checked = 0
    for (label, cls), mass in on_class.items():
        expected = mass / total[label, cls]
        atlas = np.stack(tokens[tokens["block"] == label].sort_values("token")["class_share"].to_numpy())[:, cls]
        np.testing.assert_allclose(atlas, expected, rtol=2e-4, atol=1e-6, err_msg=f"{label}, {CLASSES[cls]}")
        checked += 1
    assert checked >= 5 * len(CLASSES) - 2  # nearly every class appears in 200 scenes, at every block


def test_an_interrupted_build_resumes_and_gives_the_same_files(built, plan, tmp_path):
    folder = tmp_path / "resumed"
    atlas_build.build(plan, folder, stop_after=96)  # stops after three batches, as a killed build would
    assert (folder / atlas_build.STATE).exists() and not (folder / "tokens.parquet").exists()
    said = []
    atlas_build.build(plan, folder, say=said.append)
    assert said[0].startswith(f"\r{96 + 32:,} / {SCENES}")  # it went on from the checkpoint
    assert not (folder / atlas_build.STATE).exists()
    same_files(built, folder)


def test_the_same_build_on_a_two_node_ray_cluster_gives_the_same_files(built, plan, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        atlas_build.build(plan, tmp_path / "ray", ray_address=cluster.address)
        nodes = [node for node in ray.nodes() if node["Alive"]]
        assert len(nodes) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()
    same_files(built, tmp_path / "ray")


def test_a_build_on_one_machine_needs_no_ray(tmp_path):
    """Ray unimportable (as where it is not installed): a local build runs, and --ray says what it needs."""
    blocked = "import sys; sys.modules['ray'] = None; from atlas.__main__ import main; sys.exit(main(sys.argv[1:]))"
    for extra, code, said in (([], 0, "wrote the atlas of 8 images"), (["--ray", "local"], 2, "--ray needs Ray Data")):
        result = subprocess.run([sys.executable, "-c", blocked, "build", "scenes:8", "--out", str(tmp_path / "x"),
                                 "--batch", "4", *extra], capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == code and said in result.stdout + result.stderr, result.stderr


def test_a_folder_with_class_subfolders_gives_classes_and_bad_sources_are_said(tmp_path):
    folder = tmp_path / "images"
    for cls, names in (("cups", ["coffee.jpg"]), ("space", ["rocket.jpg", "astronaut.jpg"])):
        (folder / cls).mkdir(parents=True)
        for name in names:
            shutil.copy(EXAMPLES / name, folder / cls / name)
    out = tmp_path / "atlas"
    result = subprocess.run([sys.executable, "-m", "atlas", "build", str(folder), "--out", str(out), "--batch", "2"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "images/s" in result.stderr  # the progress line
    meta = json.loads((out / "meta.json").read_text())
    assert meta["classes"] == ["cups", "space"] and meta["images"] == 3
    class_maps = pq.read_table(out / "class_maps.parquet").to_pandas()
    assert set(class_maps["class"]) == {"cups", "space"}
    assert set(class_maps[class_maps["class"] == "space"]["images"]) == {2}
    images = pq.read_table(out / "images.parquet").to_pylist()
    assert {(image["name"], tuple(image["classes"])) for image in images} <= {
        ("cups/coffee.jpg", ("cups",)), ("space/rocket.jpg", ("space",)), ("space/astronaut.jpg", ("space",))}
    for source, message in (("scenes:many", "scenes:N takes a whole number"), (str(tmp_path / "none"), "is not a folder"),
                            ("scenes:0", "scenes:N takes N from 1")):
        result = subprocess.run([sys.executable, "-m", "atlas", "build", source, "--out", str(tmp_path / "x")],
                                capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
