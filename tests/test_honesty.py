"""The page never claims what it does not know: untrained weights, images without the model's classes,
blank explanations and token rankings that are only noise are said in words."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from analysis.explanations import METHODS
from model.bundle import open_model
from model.dualvit import Grid
from model.trace import Trace
from viewer import help_texts, render


def trace_with(probabilities: list[float], multi_label: bool = True) -> Trace:
    values = torch.tensor([probabilities])
    return Trace(maps={}, stage_grids=(Grid(14, 14),), semantic_grid=Grid(2, 2), logits=values, probabilities=values,
                 class_names=tuple(f"shape_{i}" for i in range(len(probabilities))), multi_label=multi_label)


def test_the_shipped_model_states_its_domain_and_admits_when_nothing_it_knows_is_there():
    bundle = open_model(None, device="cpu")
    assert bundle.trained and help_texts.model_banner(bundle) == ""
    statement = help_texts.model_statement(bundle)
    assert "10 classes" in statement and "on other images its classes mean nothing" in statement
    # Its tokens were shaped by a loss on their maps: the page says so, beside what that means.
    assert "trained to outline objects" in statement and "not only what the architecture finds" in statement
    nothing = help_texts.prediction_verdict(trace_with([0.3, 0.45, 0.1]), bundle)
    assert "None of its classes" in nothing and "45%" in nothing
    present = help_texts.prediction_verdict(trace_with([0.9, 0.2, 0.7]), bundle)
    assert "shape 0, shape 2" in present and "None" not in present


def test_the_prediction_heading_is_the_answer_not_the_top_class():
    bundle = open_model(None, device="cpu")
    assert help_texts.prediction_heading(trace_with([0.3, 0.45, 0.1]), bundle) == "none of its classes"
    assert help_texts.prediction_heading(trace_with([0.7, 0.2, 0.9]), bundle) == "shape 2, shape 0"
    assert help_texts.prediction_heading(trace_with([0.2, 0.5, 0.1]), bundle) == "shape 1"  # 50% passes
    single = trace_with([0.3, 0.6, 0.1], multi_label=False)  # scores that add up to one: the top class
    assert help_texts.prediction_heading(single, bundle) == "shape 1"


def test_untrained_weights_head_their_prediction_as_noise(small_weights):
    bundle = open_model(small_weights, device="cpu")
    assert "noise" in help_texts.prediction_heading(trace_with([0.99, 0.01, 0.5]), bundle)


def test_weights_whose_tokens_were_left_alone_claim_no_token_training():
    bundle = dataclasses.replace(open_model(None, device="cpu"), token_training="")
    assert "tokens were" not in help_texts.model_statement(bundle)


def test_untrained_weights_get_a_banner_and_no_training_set(small_weights):
    bundle = open_model(small_weights, device="cpu")
    assert not bundle.trained
    assert "Untrained weights" in help_texts.model_banner(bundle)
    statement = help_texts.model_statement(bundle)
    assert "not trained" in statement and "trained on" not in statement
    assert "noise" in help_texts.prediction_verdict(trace_with([0.99, 0.01, 0.5]), bundle)


def test_an_architecture_without_weights_starts_untrained_with_imagenet_placeholders():
    bundle = open_model(None, "dualvit_nano", device="cpu")
    assert bundle.trained  # the shipped model is dualvit_nano
    # Any other architecture without weights is randomly initialised, and says so.
    random_bundle = open_model(None, "dualvit_s", device="cpu")
    assert not random_bundle.trained and random_bundle.weights == "random initialisation"
    assert "Untrained" in help_texts.model_banner(random_bundle)
    assert "`--weights dualvit_s` (or `dualvit_s_384`)" in help_texts.model_banner(random_bundle)
    assert "ImageNet" not in help_texts.model_statement(random_bundle)


def test_a_trained_imagenet_model_warns_that_it_always_answers():
    bundle = dataclasses.replace(open_model(None, device="cpu"), class_names=tuple(str(i) for i in range(1000)),
                                 domain="ImageNet-1k")
    assert "even when none is there" in help_texts.model_statement(bundle)
    verdict = help_texts.prediction_verdict(trace_with([0.9] + [0.1 / 999] * 999, multi_label=False), bundle)
    assert "does not mean the object is really there" in verdict


def test_blank_maps_say_why():
    assert "zero everywhere" in render.blank_reason(np.zeros((7, 7)))
    assert "constant" in render.blank_reason(np.full((7, 7), 0.25))
    assert "not finite" in render.blank_reason(np.array([[1.0, np.nan]]))
    assert render.blank_reason(np.eye(3)) == ""


def test_only_tokens_far_above_the_spread_are_ranked():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.01, 64).astype(np.float32)
    assert (render.standing_out(noise) < render.SIGNIFICANT_DEVIATIONS).all()
    strong = noise.copy()
    strong[[5, 40]] = [0.5, 0.3]
    deviations = render.standing_out(strong)
    assert set(np.flatnonzero(deviations >= render.SIGNIFICANT_DEVIATIONS)) == {5, 40}
    assert deviations[5] > deviations[40]


def test_an_all_zero_attribution_is_said_in_words_not_drawn_blank():
    from PIL import Image

    from model.bundle import ASSETS
    from viewer import markup
    from viewer.service import Explorer

    explorer = Explorer(open_model(None, device="cpu"))
    analysis = explorer.get(explorer.analyse(Image.open(ASSETS / "examples" / "scene_7_ring.png").convert("RGB")))
    view = render.explanation_view(analysis, METHODS["grad_cam"], np.zeros((7, 7), np.float32), render.Style(), 2)
    assert view.picture.image is None and "zero everywhere" in view.message
    page_html = markup.picture_html(view.picture, "Grad-CAM")
    assert "<img" not in page_html and "zero everywhere" in page_html
    drawn = render.explanation_view(analysis, METHODS["grad_cam"], np.eye(7, dtype=np.float32), render.Style(), 2)
    assert drawn.picture.image is not None and drawn.picture.key is not None and not drawn.message


def test_a_head_chosen_for_a_block_is_not_silently_applied_to_the_class_attention():
    from PIL import Image

    from analysis import trace_maths
    from model.bundle import ASSETS
    from viewer.service import Explorer

    explorer = Explorer(open_model(None, device="cpu"))
    analysis = explorer.get(explorer.analyse(Image.open(ASSETS / "examples" / "scene_7_ring.png").convert("RGB")))
    block = trace_maths.block_ref(analysis.trace, 2, 0)
    with_head = render.stages_view(analysis, block, "head 1", render.Style(), None)
    with_mean = render.stages_view(analysis, block, "mean", render.Style(), None)
    # The class block's head mean is what is drawn, and the key says so and why.
    assert np.array_equal(with_head.class_attention.image, with_mean.class_attention.image)
    assert with_head.class_attention.key.note.startswith(
        "mean of the class block's heads (head 1 is a head of stage 2 · block 0, not of the class block)")
    assert "class block" not in with_mean.class_attention.key.note


def test_an_explanation_names_its_class_and_probability_and_says_when_the_model_does_not_see_it():
    from PIL import Image

    from model.bundle import ASSETS
    from viewer.service import Explorer

    explorer = Explorer(open_model(None, device="cpu"))
    analysis = explorer.get(explorer.analyse(Image.open(ASSETS / "examples" / "astronaut.jpg").convert("RGB")))
    names = analysis.trace.class_names
    probabilities = analysis.trace.probabilities[0]
    absent = int(probabilities.argmin())
    assert probabilities[absent] < 0.5
    view = render.explanation_view(analysis, METHODS["grad_cam"], np.eye(7, dtype=np.float32), render.Style(), None,
                                   absent)
    name = help_texts.display_name(names[absent])
    assert f'"{name}" ({probabilities[absent]:.0%})' in view.picture.key.unit  # the key names the class
    assert f'The model gives "{name}" only {probabilities[absent]:.0%}' in view.picture.message
    scene = explorer.get(explorer.analyse(Image.open(ASSETS / "examples" / "scene_7_ring.png").convert("RGB")))
    present = int(scene.trace.probabilities[0].argmax())
    assert scene.trace.probabilities[0, present] >= 0.5
    seen = render.explanation_view(scene, METHODS["grad_cam"], np.eye(7, dtype=np.float32), render.Style(), None,
                                   present)
    assert "only" not in seen.picture.message and help_texts.display_name(names[present]) in seen.picture.key.unit
    assert render.explanation_view(scene, METHODS["dual_rollout"], np.eye(56, dtype=np.float32), render.Style(),
                                   None, None).picture.key.unit == "attribution"  # a class-agnostic method names none
