"""The launched Gradio server, driven through its API with gradio_client."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from image_corpus import corpus

from analysis import trace_maths
from analysis.explanations import METHODS
from model.trace import Trace
from viewer import catalogue, payload

EXAMPLES = Path(__file__).parents[1] / "assets" / "examples"
VIEW = ["stage 2 · block 0", "mean", "per map", "inferno", 0.6]
CASES = corpus()


@pytest.fixture
def session(app_server):
    """A client session that has analysed one example."""
    client = app_server.client()
    client.predict(handle_file(EXAMPLES / "scene_10_circle_triangle_heart.png"), "224", api_name="/analyse")
    return client


def fetch_maps(app_server, url: str) -> tuple[dict, dict]:
    """The maps the browser fetches for an analysis, read back."""
    response = httpx.get(f"{app_server.url.rstrip('/')}/{url}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    return payload.read(response.content)


def test_analyse_returns_the_prediction_and_where_the_browser_finds_the_maps(app_server):
    client = app_server.client()
    prediction, verdict, status, target_class, controls = client.predict(
        handle_file(EXAMPLES / "cat_chelsea.jpg"), "aspect", api_name="/analyse")
    assert len(prediction["confidences"]) == 5
    assert all(0 <= item["confidence"] <= 1 for item in prediction["confidences"])
    assert "semantic tokens" in status and "Untrained weights" in verdict
    # The heading is the answer (untrained: noise); the explanations start on the top class.
    assert prediction["label"] == "noise (untrained weights)"
    assert target_class["value"] == prediction["confidences"][0]["label"] and len(target_class["choices"]) == 5
    analysis = app_server.explorer.cache.newest()
    meta, arrays = fetch_maps(app_server, controls["load"]["url"])
    opening = trace_maths.default_block(analysis.trace)
    assert meta["opening"] == opening.label and len(meta["blocks"]) == 5  # dualvit_nano: 1+1+2+1 blocks
    assert meta["tokens"] == trace_tokens(status) == analysis.trace.num_semantic
    for block in meta["blocks"]:  # only the heads each block has
        ref = trace_maths.block_ref(analysis.trace, block["stage"], block["block"])
        heads = analysis.trace.maps[ref.token_map_name].shape[1]
        assert block["fusions"] == ["mean", "max", "min"] + [f"head {h}" for h in range(heads)]
    name = meta["blocks"][0]["mean"]["name"]
    assert arrays[f"{name}/tokens/cells"].shape == (meta["tokens"], analysis.trace.grid(1).size)


def test_a_block_sends_another_fusion_of_its_heads_and_refuses_one_it_lacks(app_server, session):
    analysis = app_server.explorer.cache.newest()
    key = app_server.explorer.cache.latest_of(session.session_hash)
    meta, arrays = fetch_maps(app_server, f"explorer-data/{key}/4/0/head%203")  # dualvit_nano: 5 heads in stage 4
    values = trace_maths.token_maps(analysis.trace, 4, 0, "head 3")
    cells, tops = arrays["block/tokens/cells"], arrays["block/tokens/tops"]
    np.testing.assert_allclose(cells / 255 * tops[:, None] * meta["block"]["uniform"], values.reshape(64, -1),
                               atol=float(tops.max()) * meta["block"]["uniform"] / 255)
    refused = httpx.get(f"{app_server.url.rstrip('/')}/explorer-data/{key}/1/0/head%203")  # 1 head in stage 1
    assert refused.status_code == 404 and "Heads must be one of mean, max, min, head 0" in refused.json()["detail"]
    unknown = httpx.get(f"{app_server.url.rstrip('/')}/explorer-data/{'0' * 32}")
    assert unknown.status_code == 404 and "analyse an image first" in unknown.json()["detail"]


def test_one_picture_downloads_as_a_figure_and_a_bad_request_is_said(app_server, session):
    key = app_server.explorer.cache.latest_of(session.session_hash)
    base = f"{app_server.url.rstrip('/')}/explorer-figure/{key}"
    asked = {"block": "stage 2 · block 0", "token": "12", "scale": "mass", "point": "40.5,100"}
    for name, file_format, starts in (("token_image", "png", b"\x89PNG"), ("pixel_owner", "svg", b"<?xml"),
                                      ("tour_step_3", "pdf", b"%PDF"), ("compare_left", "png", None)):
        response = httpx.get(f"{base}/{name}.{file_format}", params=asked)
        if starts is None:  # not a figure of its own: Compare downloads its sides as token_image
            assert response.status_code == 404 and "No figure named 'compare_left'" in response.json()["detail"]
            continue
        assert response.status_code == 200 and response.content.startswith(starts), (name, response.text[:200])
        assert response.headers["content-disposition"] == f'attachment; filename="{name}.{file_format}"'
    said = httpx.get(f"{base}/token_image.svg", params=asked).text
    assert "Token 12 at stage 2 · block 0" in said and "UNTRAINED WEIGHTS" in said
    for params, path, message in (({"token": "64"}, "token_image.png", "Token 64 does not exist"),
                                  ({}, "token_image.gif", "PNG, SVG or PDF"),
                                  ({"point": "a,b"}, "pixel_reads.png", "A point is two numbers"),
                                  ({}, "tour_step_9.png", "The tour has steps 1 to 7"),
                                  ({}, "explain_image.png", "No figure named 'explain_image'")):
        response = httpx.get(f"{base}/{path}", params=params)
        assert response.status_code == 404 and message in response.json()["detail"], (path, response.text)
    gone = httpx.get(f"{app_server.url.rstrip('/')}/explorer-figure/{'0' * 32}/token_image.png")
    assert gone.status_code == 404 and "analyse an image first" in gone.json()["detail"]


def test_the_atlas_answers_for_a_token_and_says_whose_tokens_it_holds(app_server):
    client = app_server.client()
    atlas = app_server.explorer.atlas
    block, token, said, examples, lifts, classes, blocks_said, blocks = client.predict(atlas.blocks[1], 38,
                                                                                      api_name="/atlas")
    assert (block, token) == (atlas.blocks[1], 38)
    # The page serves untrained weights; the shipped atlas was built with the shipped model's: it says so.
    assert "built with other weights" in said and f"Token 38 at {atlas.blocks[1]}" in said
    assert examples.count('class="tile"') == 8 and "colour-key" in examples
    assert lifts["type"] == "plotly" and classes["type"] == "plotly" and "follow objects" in blocks_said
    for asked, message in (((atlas.blocks[1], 64), "Token must be a whole number from 0 to 63"),
                           (("stage 9 · block 0", 1), "The atlas has no block 'stage 9 · block 0'")):
        with pytest.raises(AppError, match=re.escape(message)):
            client.predict(*asked, api_name="/atlas")


ENDPOINT_ARGUMENTS = {"token_gallery": [], "token_detail": [17], "pixel_view": [None],
                      "stages_view": ["mean over tokens"]}


@pytest.mark.parametrize("scale", ["per map", "shared", "mass"])
def test_every_drawn_view_carries_a_colour_key(session, scale):
    view = ["stage 2 · block 0", "mean", scale, "inferno", 0.6]
    for endpoint, extra in ENDPOINT_ARGUMENTS.items():
        values = session.predict(*view, *extra, api_name=f"/{endpoint}")
        values = values if isinstance(values, (list, tuple)) else [values]
        for declared, value in zip(catalogue.views_of(endpoint), values):
            if declared.keyed:
                assert value.count('class="colour-key"') == 1, declared.name
    gallery = session.predict(*view, api_name="/token_gallery")
    assert gallery.count('class="tile"') == 64
    if scale == "mass":
        assert "50%" in gallery and "80%" in gallery and "95%" in gallery
    else:
        assert "attention weight" in gallery
    ownership = session.predict(*view, None, api_name="/pixel_view")[4]
    assert 'data-owners="' in ownership and "token " in ownership  # hovering names the owner; the key lists them


def trace_tokens(status: str) -> int:
    return int(status.split(":")[1].split("semantic tokens")[0])


def test_views_come_from_the_cache_without_running_the_model(app_server, session):
    passes = app_server.explorer.forward_passes
    gallery = session.predict(*VIEW, api_name="/token_gallery")
    assert gallery.count('class="tile"') == 64 and 'data-token="5" title="token 5"' in gallery
    image, filmstrip, stats = session.predict(*VIEW, 17, api_name="/token_detail")
    assert "<img" in image and "Token 17" in stats and filmstrip.count('class="tile"') == 5
    marked, owner_map, plot, top_tokens, ownership = session.predict(*VIEW, None, api_name="/pixel_view")
    assert marked.startswith("data:image/jpeg;base64,") and "<img" in owner_map and "colour-key" in owner_map
    assert plot["type"] == "plotly" and top_tokens.count('class="tile"') == 4
    stages, class_map, self_plot, quadrants = session.predict(*VIEW, "mean over tokens", api_name="/stages_view")
    assert [f"stage {s} · block {b}" for s, b in ((1, 0), (2, 0), (3, 1), (4, 0))] == \
        [title.split(" · half on ")[0] for title in re.findall(r'class="tile" title="([^"]+)"', stages)]
    tour = session.predict("per map", "inferno", 0.6, api_name="/tour")
    assert len(tour) == 2 * 7 and all("colour-key" in picture for picture in tour[:7])
    assert "Across the atlas" not in tour[7 + 2]  # the shipped atlas speaks of other weights than these
    for fusion in ("max", "min", "head 1"):
        session.predict(VIEW[0], fusion, "shared", "viridis", 0.3, 3, api_name="/token_detail")
    assert app_server.explorer.forward_passes == passes


def test_sessions_keep_their_own_trace(app_server):
    first, second = app_server.client(), app_server.client()
    first.predict(handle_file(EXAMPLES / "coffee.jpg"), "224", api_name="/analyse")
    second.predict(handle_file(EXAMPLES / "rocket.jpg"), "aspect", api_name="/analyse")
    first_stats = first.predict(*VIEW, 0, api_name="/token_detail")[2]
    second_stats = second.predict(*VIEW, 0, api_name="/token_detail")[2]
    assert first_stats != second_stats


@pytest.mark.parametrize("arguments, message", [
    (["stage 9 · block 0", "mean", "per map", "inferno", 0.6, 3], "Unknown block .stage 9 · block 0.; choose one of"),
    (["stage 1 · block 0", "head 3", "per map", "inferno", 0.6, 3], "head"),
    ([*VIEW, 64], "Token 64 does not exist"),
    ([*VIEW, -1], "Token -1 does not exist"),
    ([*VIEW, 2.5], "whole number"),
    (["stage 2 · block 0", "mean", "per map", "inferno", -0.5, 3], "Opacity must be a number from 0 to 1, not -0.5"),
    (["stage 2 · block 0", "mean", "per map", "inferno", 1.5, 3], "Opacity must be a number from 0 to 1, not 1.5"),
    (["stage 2 · block 0", "median", "per map", "inferno", 0.6, 3], "Heads must be one of mean, max, min, head 0"),
    (["stage 2 · block 0", "mean", "loudest", "inferno", 0.6, 3], "Colour scale must be one of per map, shared, mass"),
    (["stage 2 · block 0", "mean", "per map", "rainbow-unicorn", 0.6, 3], "Colormap must be one of inferno"),
])
def test_wrong_ui_values_give_clear_errors(session, arguments, message):
    with pytest.raises(AppError, match=message):
        session.predict(*arguments, api_name="/token_detail")
    assert "Token 3" in session.predict(*VIEW, 3, api_name="/token_detail")[2]


def test_views_before_any_analysis_are_explained(app_server):
    with pytest.raises(AppError, match="analyse an image first"):
        app_server.client().predict(*VIEW, 0, api_name="/token_detail")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_odd_files_through_the_server(app_server, tmp_path, case):
    path = tmp_path / f"{case.name}{case.suffix}"
    path.write_bytes(case.data)
    client = app_server.client()
    if case.expect is None:
        prediction = client.predict(handle_file(path), "224", api_name="/analyse")[0]
        assert len(prediction["confidences"]) == 5
    else:
        with pytest.raises(AppError, match=case.expect):
            client.predict(handle_file(path), "224", api_name="/analyse")
    # The server keeps serving.
    assert client.predict(handle_file(EXAMPLES / "coffee.jpg"), "224", api_name="/analyse")[0]["confidences"]


@pytest.mark.slow  # draws every view, the deck and the animations, twice
def test_export_bundles_every_view_the_deck_the_animations_the_trace_and_the_settings(session, tmp_path):
    archive = session.predict(*VIEW, 5, None, api_name="/export", token_choice="7")
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
        bundle.extractall(tmp_path)
    views = [view.name for view in catalogue.VIEWS if view.exported]
    assert {f"{name}.{suffix}" for name in views for suffix in ("png", "svg", "pdf")} <= names
    assert {"token_gallery.png", "filmstrip.png", "deck.html", "deck.pdf", "token_through_blocks.mp4",
            "mean_through_stages.gif", "pixel_reads.html", "trace.safetensors", "settings.json"} <= names
    trace = Trace.load(tmp_path / "trace.safetensors")
    assert trace.num_semantic == 64 and "stage2.block0.semantic_to_pixel" in trace.maps
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["token"] == 5 and settings["stage_token"] == 7 and settings["explanation"] is None
    stages = ElementTree.parse(tmp_path / "stages.svg").getroot()
    said = " ".join(" ".join(text.itertext()) for text in stages.iter("{http://www.w3.org/2000/svg}text"))
    assert "token 7" in said and "scene_10_circle_triangle_heart.png" in said  # the Stages token as chosen
    # After an explanation, the download holds it too, headed with its method.
    session.predict("dual_rollout", None, 2, "per map", "inferno", 0.6, api_name="/explain")
    with zipfile.ZipFile(session.predict(*VIEW, 5, None, api_name="/export")) as bundle:
        assert {"explain_image.png", "explain_image.svg"} <= set(bundle.namelist())
        assert json.loads(bundle.read("settings.json"))["explanation"] == METHODS["dual_rollout"].title


@pytest.mark.parametrize("method", ["grad_cam", "dual_rollout", "aux_head", "token_importance"])
def test_explanations_are_drawn_and_cached(app_server, session, method):
    prediction = session.predict(handle_file(EXAMPLES / "coffee.jpg"), "224", api_name="/analyse")[0]
    arguments = [method, prediction["confidences"][0]["label"], 2, "per map", "inferno", 0.6]
    image, text, tokens, plot = session.predict(*arguments, api_name="/explain")
    if method == "token_importance":
        assert plot["type"] == "plotly" and "view-message" in image  # says whether any token stands out
        assert tokens.count('class="tile"') <= 8 and re.search(r"stands? out", image)
    else:
        # Either a keyed map or, for a blank one, a message saying why.
        assert ("<img" in image and "colour-key" in image) or "view-message" in image
        assert not tokens
    assert len(text) > 40
    cached = app_server.explorer.cache.explanations
    session.predict(*arguments, api_name="/explain")
    assert app_server.explorer.cache.explanations == cached  # the second request came from the cache


def test_explanation_of_an_unknown_class_is_refused(session):
    with pytest.raises(AppError, match="not in the list of choices|Unknown class"):
        session.predict("grad_cam", "no such class", 2, "per map", "inferno", 0.6, api_name="/explain")


def test_a_class_agnostic_method_needs_no_class(session):
    image, *_ = session.predict("dual_rollout", None, None, "per map", "inferno", 0.6, api_name="/explain")
    assert "<img" in image and "colour-key" in image


@pytest.mark.parametrize("part", [("", b"\x89PNG\r\n\x1a\n", "image/png"), None], ids=["empty-file-name", "plain-field"])
def test_a_malformed_upload_gets_a_clear_400_and_the_server_keeps_serving(app_server, part):
    url = f"{app_server.url.rstrip('/')}/gradio_api/upload"
    if part is None:  # the files field sent as a form value, not a file
        response = httpx.post(url, data={"files": "image.png"}, files={"other": ("x.png", b"x", "image/png")})
    else:
        response = httpx.post(url, files={"files": part})
    assert response.status_code == 400
    assert "file name" in response.json()["detail"]
    good = httpx.post(url, files={"files": ("scene.png", (EXAMPLES / "scene_7_ring.png").read_bytes(), "image/png")})
    assert good.status_code == 200 and good.json()[0].endswith("scene.png")


@pytest.mark.slow  # its own server, and a whole export
def test_a_declared_method_is_on_the_page_in_the_api_and_in_the_export(small_weights, tmp_path):
    """One declaration is all a method needs: a dummy one, registered before the page is built."""
    from conftest import launch

    from analysis.explanations import ExplanationMethod, register, unregister

    def checkerboard(_network, _images, trace, _target, _stage) -> np.ndarray:
        grid = trace.grid(4)
        return (np.indices(tuple(grid)).sum(axis=0) % 2).astype(np.float32)

    dummy = register(ExplanationMethod("dummy_checkerboard", "Dummy checkerboard", "A checkerboard on the stage-4 "
                                       "grid, whatever the image: a method declared by a test.", checkerboard,
                                       passes=lambda *_: 0, needs_class=False))
    try:
        demo, running = launch(small_weights)
        try:
            page = httpx.get(f"{running.url.rstrip('/')}/config").json()
            menus = [component["props"] for component in page["components"]
                     if component["props"].get("elem_id") == "explain-method"]
            assert ["Dummy checkerboard", "dummy_checkerboard"] in menus[0]["choices"]
            client = running.client()
            client.predict(handle_file(EXAMPLES / "scene_7_ring.png"), "224", api_name="/analyse")
            image, text, *_ = client.predict("dummy_checkerboard", None, 2, "per map", "inferno", 0.6,
                                             api_name="/explain")
            assert "<img" in image and "colour-key" in image and text == dummy.help
            with zipfile.ZipFile(client.predict(*VIEW, 5, None, api_name="/export")) as bundle:
                assert json.loads(bundle.read("settings.json"))["explanation"] == "Dummy checkerboard"
        finally:
            demo.close()
    finally:
        unregister(dummy)


def test_a_bug_in_a_view_is_logged_with_its_traceback_and_not_called_bad_input(session, monkeypatch, caplog):
    from viewer import handlers, render

    def broken(*_arguments):
        raise KeyError("a renderer's bug")

    monkeypatch.setattr(render, "token_gallery", broken)
    with caplog.at_level("ERROR", logger=handlers.log.name):
        with pytest.raises(AppError) as error:
            session.predict(*VIEW, api_name="/token_gallery")
    assert str(error.value).startswith("Internal error") and "a renderer's bug" not in str(error.value)
    logged = [record for record in caplog.records if record.name == handlers.log.name]
    assert logged and logged[-1].exc_info[0] is KeyError
    assert "a renderer's bug" in caplog.text and "Traceback" in caplog.text
