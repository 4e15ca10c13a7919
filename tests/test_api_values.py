"""Every parameter of every endpoint, sent a bad value through the live server: a short message, never a bare error.

The cases are generated from the server's own API description, so a new endpoint or parameter is
covered without listing it here.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

pytestmark = [pytest.mark.slow]

EXAMPLE = Path(__file__).parents[1] / "assets" / "examples" / "scene_7_ring.png"
BAD_VALUES = {"None": None, "empty": "", "word": "not-a-value", "nan": math.nan, "inf": math.inf,
              "-inf": -math.inf, "huge": 1e12, "negative": -7, "fraction": 2.5, "list": [1, 2], "dict": {"a": 1}}
# What a bare failure looks like to a client: Gradio hides the exception and says only this.
BARE = ("has not enabled verbose error reporting", "Error", "")


@pytest.fixture(scope="module")
def api(app_server):
    client = app_server.client()
    client.predict(handle_file(EXAMPLE), "224", api_name="/analyse")
    description = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    return client, description


def good_values(client, description) -> dict[str, dict[str, object]]:
    """A valid value for every parameter: the example of the API description, or the first choice."""
    analysed = client.predict(handle_file(EXAMPLE), "224", api_name="/analyse")
    class_name = analysed[3]["value"]
    known = {"upload": handle_file(EXAMPLE), "block_label": "stage 2 · block 0", "class_name": class_name, "token": 3,
             "opacity": 0.6, "stage": "2", "token_choice": "mean over tokens", "method": "grad_cam", "fusion": "mean"}
    # (the atlas's blocks are the shipped model's, which the untrained small model shares: "stage 2 · block 0")
    values = {}
    for endpoint, info in description.items():
        values[endpoint] = {}
        for parameter in info["parameters"]:
            name = parameter["parameter_name"]
            choices = parameter["python_type"]["type"]
            default = choices.split("'")[1] if choices.startswith("Literal['") else None
            values[endpoint][name] = known.get(name, default)
    return values


def test_every_parameter_answers_bad_values_with_a_message(api):
    client, description = api
    valid = good_values(client, description)
    failures = []
    for endpoint, parameters in valid.items():
        if endpoint == "/explain":
            continue  # the slow one: covered below with the cheap method only
        for name in parameters:
            for label, bad in BAD_VALUES.items():
                message = outcome(client, endpoint, {**parameters, name: bad})
                if message is not None and (message.strip() in BARE or "verbose" in message
                                            or message.startswith("Internal error")):  # a bad value is no bug
                    failures.append(f"{endpoint} {name}={label}: {message!r}")
    assert not failures, "\n".join(failures)
    # The server still serves.
    assert client.predict(handle_file(EXAMPLE), "224", api_name="/analyse")[0]["confidences"]


def test_explanation_parameters_answer_bad_values_with_a_message(api):
    client, description = api
    parameters = good_values(client, description)["/explain"] | {"method": "dual_rollout"}
    failures = []
    for name in parameters:
        for label, bad in BAD_VALUES.items():
            message = outcome(client, "/explain", {**parameters, name: bad})
            if message is not None and (message.strip() in BARE or "verbose" in message
                                        or message.startswith("Internal error")):
                failures.append(f"/explain {name}={label}: {message!r}")
    assert not failures, "\n".join(failures)


def outcome(client, endpoint: str, arguments: dict[str, object]) -> str | None:
    """None when the call worked, else the message the client was given."""
    try:
        client.predict(**arguments, api_name=endpoint)
    except AppError as error:
        return str(error)
    except ValueError as error:  # the client refuses to send some values (e.g. NaN in strict JSON)
        return f"client-side: {error}"
    return None


def test_the_messages_say_what_is_accepted(api):
    client, description = api
    valid = good_values(client, description)
    detail = valid["/token_detail"]
    assert "whole number from 0 to 63" in outcome(client, "/token_detail", {**detail, "token": 2.5})
    assert "Opacity must be a number from 0 to 1" in outcome(client, "/token_detail", {**detail, "opacity": None})
    assert "Heads must be one of mean, max, min, head 0" in outcome(client, "/token_detail", {**detail, "fusion": None})
    assert "sent as a file" in outcome(client, "/analyse", {**valid["/analyse"], "upload": "picture.png"})
    assert outcome(client, "/token_detail", detail) is None  # and the valid call works
