"""The Hugging Face Space recipe: the README's front matter, and the ZeroGPU decorator on a CPU machine."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[1]

# Analyses a photo and computes an explanation through the functions the app marks for the GPU, and
# saves what they returned; argv[2] == "without" hides the spaces package first.
SCRIPT = """
import sys
if sys.argv[2] == "without":
    sys.modules["spaces"] = None  # import spaces now fails, as where it is not installed
import torch
from PIL import Image
from model.bundle import open_model
from viewer import service

explorer = service.Explorer(open_model(None, device="auto"))
key = explorer.analyse(Image.open("assets/examples/coffee.jpg"))
analysis = explorer.get(key)
result = {
    "decorator": f"{service.on_gpu.__module__}.{service.on_gpu.__qualname__}",
    "device": str(explorer.bundle.device),
    "logits": analysis.trace.logits,
    "semantic_to_pixel": analysis.trace.maps["stage2.block0.semantic_to_pixel"],
    "grad_cam": torch.from_numpy(explorer.explain(explorer.explain_request(key, "grad_cam", "star"))),
    "rollout": torch.from_numpy(explorer.explain(explorer.explain_request(key, "dual_rollout"))),
}
torch.save(result, sys.argv[1])
"""


def run(tmp_path: Path, mode: str) -> dict:
    out = tmp_path / f"{mode}.pt"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPACES_", "ZEROGPU"))}
    env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU-only machine
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(out), mode], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return torch.load(out, weights_only=True)


@pytest.mark.slow
def test_the_functions_marked_for_zerogpu_run_on_a_cpu_machine_as_without_spaces(tmp_path):
    import spaces  # noqa: F401  (installed with requirements-dev.txt, as on every Space)

    with_spaces, without = run(tmp_path, "with"), run(tmp_path, "without")
    assert with_spaces["decorator"] == "spaces.zero.decorator.GPU"
    assert without["decorator"] == "viewer.service.on_gpu"
    assert with_spaces["device"] == without["device"] == "cpu"
    for name in ("logits", "semantic_to_pixel", "grad_cam", "rollout"):
        assert torch.equal(with_spaces[name], without[name]), name
    assert with_spaces["grad_cam"].abs().sum() > 0  # an explanation, not an empty array


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_readme_front_matter_is_a_valid_gradio_space():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and (ROOT / meta["app_file"]).is_file()
    requirements = {Requirement(line.split("#")[0]).name: Requirement(line.split("#")[0])
                    for line in (ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")}
    # The Space installs gradio at sdk_version, then requirements.txt: the two must agree.
    assert requirements["gradio"].specifier.contains(str(meta["sdk_version"]))
    assert str(meta["python_version"]) == "3.11"
    assert meta["license"] == "apache-2.0" and meta["title"]
