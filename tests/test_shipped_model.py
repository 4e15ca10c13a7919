"""The shipped scene model as a user meets it: honest on photographs, objects outlined by the opening view."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from analysis import trace_maths
from model.bundle import open_model
from training.evaluate import object_figures
from training.examples import heldout_index
from training.photos import answers, share_saying_none, skimage_photos
from training.scenes import heldout_seed, make_scene, object_coverage
from viewer import help_texts, render
from viewer.service import Explorer

EXAMPLES = Path(__file__).parents[1] / "assets" / "examples"
EXAMPLE_SCENES = sorted(EXAMPLES.glob("scene_*.png"))
EXAMPLE_PHOTOS = sorted(EXAMPLES.glob("*.jpg"))
WITHOUT_CLASSES = EXAMPLE_PHOTOS + sorted(EXAMPLES.glob("scene_*_none.png"))


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer(open_model(None, device="cpu"))


def test_natural_photographs_get_no_class_above_one_half():
    """The model card's target is 90% of the eight photographs (so all eight); these weights reach it, the
    closest at 0.25 (the card lists them). A retraining that loses it is noticed here."""
    results = answers(open_model(None, device="cpu"), skimage_photos())
    assert len(results) == 8
    assert share_saying_none(results) >= 0.9, [(r.photo, r.top_class, round(r.top_probability, 2)) for r in results]


def test_the_page_says_none_of_its_classes_on_most_examples_without_them(shipped_app):
    client = shipped_app.client()
    answers_shown = [client.predict(handle_file(image), "224", api_name="/analyse")[:2] for image in WITHOUT_CLASSES]
    verdicts = [verdict for _, verdict in answers_shown]
    assert sum("None of its classes" in verdict for verdict in verdicts) >= 3, verdicts
    # The large heading of the Prediction box says the same, instead of the top class.
    for prediction, verdict in answers_shown:
        assert (prediction["label"] == "none of its classes") == ("None of its classes" in verdict), prediction


def test_the_prediction_heading_names_every_class_above_one_half_on_the_example_scenes(shipped_app):
    client = shipped_app.client()
    for image in EXAMPLE_SCENES:
        prediction = client.predict(handle_file(image), "224", api_name="/analyse")[0]
        above = [help_texts.display_name(item["label"]) for item in prediction["confidences"] if item["confidence"] >= 0.5]
        assert prediction["label"] == (", ".join(above) or "none of its classes"), (image.name, prediction)


def test_the_example_scenes_are_the_heldout_scenes_they_are_named_after():
    assert len(EXAMPLE_SCENES) >= 4
    for path in EXAMPLE_SCENES:
        scene = make_scene(heldout_seed(heldout_index(path)))
        np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), scene.image)


def test_the_opening_block_outlines_the_objects_of_the_example_scenes(explorer):
    """At the block the page opens on, an object counts as outlined when a token's 80%-mass region covers it
    (IoU with its mask >= 0.5, the figure an even spread over the object scores 0.8 on). Thin shapes (a star's
    arms) can be missed, so the test asks it of three objects in four, and of every scene's largest object."""
    outlined = []
    for path in EXAMPLE_SCENES:
        scene = make_scene(heldout_seed(heldout_index(path)))
        analysis = explorer.get(explorer.analyse(Image.open(path).convert("RGB")))
        opening = trace_maths.default_block(analysis.trace)
        assert opening.kind == "dual", opening.label  # the tokens' own reading of the pixels
        token_maps = trace_maths.token_maps(analysis.trace, opening.stage, opening.block)  # (M, H, W)
        # The scene is 224 x 224 and the model sees it whole: the block's grid is square, over the whole scene.
        coverages = object_coverage(scene, token_maps.shape[1])[:len(scene.masks)]
        scores = [object_figures(token_maps.reshape(len(token_maps), -1), coverage.ravel())["iou_80"]
                  for coverage in coverages]
        if scores:
            assert scores[int(np.argmax([mask.sum() for mask in scene.masks]))] >= 0.5, (path.name, scores)
        outlined += [score >= 0.5 for score in scores]
    assert len(outlined) >= 8 and np.mean(outlined) >= 0.75, outlined


def test_the_tour_follows_a_token_that_gathers_from_the_objects_of_the_example_scenes(explorer):
    """The token the tour's first step names puts most of its attention at the last Dual block (the
    picture of step 3) on the scene's objects. The token owning the most pixels, which the tour followed
    before, put 0.04-0.34 there on these scenes."""
    followed = []
    for path in EXAMPLE_SCENES:
        scene = make_scene(heldout_seed(heldout_index(path)))
        if not len(scene.masks):
            continue
        analysis = explorer.get(explorer.analyse(Image.open(path).convert("RGB")))
        first_step = render.tour(analysis, render.Style())[0].text
        token = int(re.search(r"The tour follows \*\*token (\d+)\*\*", first_step)[1])
        # Its home, counted from 0 like the token numbers (and as the Semantic tab's statistics count it).
        row, column = divmod(token, analysis.trace.semantic_grid.width)
        assert f"home: row {row}, column {column}, counted from 0" in first_step
        last_dual = [ref for ref in trace_maths.blocks(analysis.trace) if ref.kind == "dual"][-1]
        token_map = trace_maths.token_maps(analysis.trace, last_dual.stage, last_dual.block)[token]
        coverage = object_coverage(scene, token_map.shape[0]).sum(axis=0)  # visible masks do not overlap
        followed.append((path.name, token, round(float((token_map * coverage).sum()), 3)))
    assert len(followed) >= 4 and all(mass > 0.5 for _, _, mass in followed), followed


def test_the_tour_names_the_largest_owners_and_the_merged_tokens_half_mass_cells(explorer):
    """Step 5 names the three tokens owning the most pixels at the last Dual block, and step 6 how many
    stage-4 cells hold half of the followed token's attention to pixels, each counted here by hand."""
    analysis = explorer.get(explorer.analyse(Image.open(EXAMPLE_SCENES[0]).convert("RGB")))
    steps = render.tour(analysis, render.Style())
    trace = analysis.trace
    last_dual = [ref for ref in trace_maths.blocks(trace) if ref.kind == "dual"][-1]
    owner, _ = trace_maths.ownership(trace, last_dual.stage, last_dual.block)
    counts = np.bincount(owner.ravel(), minlength=trace.num_semantic)
    top = sorted(range(len(counts)), key=lambda token: (-counts[token], token))[:3]
    named = ", ".join(f"token {token} ({render.share(counts[token] / owner.size)})" for token in top)
    assert f"the largest being {named};" in steps[4].text
    token = int(re.search(r"\*\*token (\d+)\*\*", steps[0].text)[1])
    last_merge = [ref for ref in trace_maths.blocks(trace) if ref.kind == "merge"][-1]
    merged = np.sort(trace_maths.token_maps(trace, last_merge.stage, last_merge.block)[token].ravel())[::-1]
    cells = int(np.searchsorted(np.cumsum(merged), 0.5 * merged.sum()) + 1)
    assert f"half of its attention to the pixels on {cells} of {merged.size} pixel tokens" in steps[5].text
