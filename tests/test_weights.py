"""Checkpoint reading, the official key map, strict loading and safety."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch

from conftest import read_keys_tsv
from model.weights import (
    OFFICIAL_BLOCK_RENAMES,
    CheckpointError,
    checkpoint_filter_fn,
    load_model,
    official_to_ours,
    read_checkpoint,
)


def load_strictly(network, source):
    """As the app loads a user's file: read (any layout, nothing unpickled), check it fits, load strictly."""
    network.load_state_dict(checkpoint_filter_fn(read_checkpoint(source), network), strict=True)
    return network


REGISTERED = [("dualvit_s", 25_054_000), ("dualvit_b", 42_627_024), ("dualvit_l", 72_966_544)]
BATCHNORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


@pytest.mark.parametrize("variant, parameter_count", REGISTERED)
def test_official_key_set_loads_strictly(variant, parameter_count):
    shapes = read_keys_tsv(variant)
    assert sum(torch.Size(s).numel() for k, s in shapes.items() if not k.endswith(BATCHNORM_BUFFERS)) == parameter_count
    state_dict = {key: torch.full(shape, 0.5) for key, shape in shapes.items()}
    network = timm.create_model(variant)
    load_strictly(network, {"state_dict": state_dict})
    assert sum(p.numel() for p in network.parameters()) == parameter_count
    assert all(bool((p == 0.5).all()) for p in network.parameters())


@pytest.mark.parametrize("variant", ["dualvit_s", "dualvit_b", "dualvit_l"])
def test_rename_map_is_a_bijection_onto_our_keys(variant):
    ours = {official_to_ours(key) for key in read_keys_tsv(variant)}
    assert len(ours) == len(read_keys_tsv(variant))
    assert ours == set(timm.create_model(variant).state_dict())


def test_every_block_rename_rule_is_used():
    keys = list(read_keys_tsv("dualvit_s"))
    import re

    from model.weights import OFFICIAL_PREFIX_RENAMES, _apply_first
    renamed = [_apply_first(OFFICIAL_PREFIX_RENAMES, key) for key in keys]
    for pattern, _ in OFFICIAL_BLOCK_RENAMES:
        assert any(re.match(pattern, key) for key in renamed), pattern


def _layouts(state_dict):
    namespace = argparse.Namespace(model="dualvit_s", lr=1e-3)
    return {
        "raw": state_dict,
        "state_dict": {"state_dict": state_dict, "epoch": 3},
        "state_dict_ema": {"state_dict_ema": state_dict, "epoch": 3},
        "model_state_dict": {"model": {"state_dict": state_dict}},
        "model": {"model": state_dict, "optimizer": {}},
        "module_prefix": {"state_dict": {f"module.{k}": v for k, v in state_dict.items()}},
        "args_namespace": {"state_dict": state_dict, "args": namespace},
    }


@pytest.mark.parametrize("layout", list(_layouts({}).keys()))
@pytest.mark.parametrize("suffix", [".pth", ".pth.tar"])
def test_every_official_layout_loads(official, tmp_path, layout, suffix):
    path = tmp_path / f"checkpoint{suffix}"
    torch.save(_layouts(official.state_dict)[layout], path)
    network = load_strictly(official.build(), str(path))
    with torch.inference_mode():
        official.check_fp32_logits(network(official.input))


def test_timm_create_model_with_an_official_file(official, tmp_path):
    """timm's way to a local file in another layout: pretrained=True with the file, through checkpoint_filter_fn."""
    path = tmp_path / "official.pth.tar"
    torch.save({"state_dict": official.state_dict, "args": argparse.Namespace(epochs=300)}, path)
    config = {k: v for k, v in official.config.items() if k != "mlp_ratios"}
    # The overlay says how many classes the file holds: timm leaves the heads of another count untouched.
    overlay = {"file": str(path), "num_classes": official.config["num_classes"]}
    network = timm.create_model("dualvit_s", pretrained=True, pretrained_cfg_overlay=overlay, **config,
                                mlp_ratios=official.config["mlp_ratios"]).eval()
    with torch.inference_mode():
        official.check_fp32_logits(network(official.input))


def test_missing_unexpected_and_misshaped_keys_are_named(official):
    state_dict = dict(official.state_dict)
    del state_dict["head.weight"]
    state_dict["extra.weight"] = torch.zeros(1)
    state_dict["q"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError) as error:
        load_strictly(official.build(), state_dict)
    message = str(error.value)
    assert "1 missing (head.weight)" in message
    assert "1 unexpected (extra.weight)" in message
    assert "1 mis-shaped (stages.0.semantic_embed.queries (checkpoint (3, 3), model (64, 16)))" in message
    # Read from the checkpoint's own keys and shapes: the fixture's sizes are no registered variant's.
    assert "looks like a Dual-ViT of no registered size (blocks per stage 2-2-2-1, widths 16-32-40-48)" in message


def test_a_checkpoint_of_another_size_is_named_in_a_short_message():
    nano = timm.create_model("dualvit_nano", num_classes=10).state_dict()
    with pytest.raises(CheckpointError) as error:
        load_model(nano, "dualvit_s")
    message = str(error.value)
    assert message.startswith("the checkpoint does not fit dualvit_s: 327 missing (")
    assert "and 324 more); 230 mis-shaped (" in message and "and 227 more)" in message
    assert message.endswith("It looks like dualvit_nano with 10 classes, a token-labeling head.")
    assert len(message) < 800  # three keys of each kind, not hundreds


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(official, tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "hostile.pth"
    torch.save({"state_dict": official.state_dict, "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="refused to open hostile.pth"):
        load_strictly(official.build(), str(path))
    assert not marker.exists()


def test_truncated_and_corrupt_files_are_refused(official, tmp_path):
    good = tmp_path / "good.pth"
    torch.save(official.state_dict, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(str(truncated))
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_checkpoint(str(corrupt))
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        read_checkpoint(str(tmp_path / "absent.pth"))


def test_token_label_and_classes_are_detected_from_the_checkpoint(official, tmp_path):
    without_aux = {k: v for k, v in official.state_dict.items() if not k.startswith("aux_head.")}
    # A model with the official architecture but no aux head: the class head alone gives its logits.
    network = official.build(layer_norm_eps=1e-6, token_label=False)  # as the registered dualvit_s builds it
    network.load_state_dict(checkpoint_filter_fn(without_aux, network))
    with torch.inference_mode():
        expected = network(official.input)
    path = tmp_path / "no_aux.pth"
    torch.save(without_aux, path)
    config = {k: v for k, v in official.config.items() if k not in ("num_classes", "token_label")}
    loaded = load_model(str(path), "dualvit_s", **config)
    assert loaded.token_label is False and loaded.num_classes == 10
    with torch.inference_mode():
        torch.testing.assert_close(loaded(official.input), expected, rtol=0, atol=1e-6)
    with pytest.raises(CheckpointError, match="aux_head"):
        load_strictly(official.build(token_label=True), without_aux)


def test_architecture_is_inferred_from_shapes():
    network = timm.create_model("dualvit_s", num_classes=7)
    loaded = load_model(network.state_dict())
    assert loaded.pretrained_cfg["architecture"] == "dualvit_s" and loaded.num_classes == 7


@pytest.mark.slow
def test_converter_writes_safetensors_with_our_keys(official, tmp_path):
    source = tmp_path / "official.pth.tar"
    torch.save({"model": {"state_dict": official.state_dict}, "args": argparse.Namespace()}, source)
    destination = tmp_path / "converted.safetensors"
    result = subprocess.run([sys.executable, "-m", "model.weights", "convert", str(source), str(destination)],
                            capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    stored = safetensors.torch.load_file(destination)
    assert "stages.0.semantic_embed.queries" in stored and "q" not in stored
    network = load_strictly(official.build(), str(destination))
    with torch.inference_mode():
        official.check_fp32_logits(network(official.input))


@pytest.mark.slow
def test_converter_reports_a_bad_file(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    result = subprocess.run([sys.executable, "-m", "model.weights", "convert", str(bad), str(tmp_path / "o.safetensors")],
                            capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 2 and "not a readable PyTorch checkpoint" in result.stderr


HUB_SCRIPT = """
import sys, torch, model
from model.weights import load_model
network = load_model("hf://dualvit-explorer/tiny/weights/tiny.safetensors", "dualvit_s", **eval(sys.argv[1]))
torch.save(network.state_dict(), sys.argv[2])
"""


@pytest.mark.slow
def test_hub_reference_resolves_from_the_local_cache_offline(official, tmp_path):
    # Lay out the cache exactly as huggingface_hub stores a download: refs/main -> snapshot.
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_cache = tmp_path / "hub" / "models--dualvit-explorer--tiny"
    snapshot = repo_cache / "snapshots" / revision / "weights"
    snapshot.mkdir(parents=True)
    (repo_cache / "refs").mkdir()
    (repo_cache / "refs" / "main").write_text(revision)
    safetensors.torch.save_file({k: v.contiguous() for k, v in official.state_dict.items()}, snapshot / "tiny.safetensors")
    config = {k: v for k, v in official.config.items() if k not in ("num_classes", "token_label")}
    out = tmp_path / "loaded.pth"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    result = subprocess.run([sys.executable, "-c", HUB_SCRIPT, repr(config), str(out)], capture_output=True,
                            text=True, env=env, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    network = official.build()
    network.load_state_dict(torch.load(out, weights_only=True))
    with torch.inference_mode():
        official.check_fp32_logits(network(official.input))


def test_bad_hub_reference_is_explained():
    with pytest.raises(CheckpointError, match="hf://OWNER/REPO/FILENAME"):
        read_checkpoint("hf://only-owner")


def test_checkpoint_of_another_model_is_refused_with_the_reason(official, tmp_path):
    path = tmp_path / "nano.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in timm.create_model("dualvit_nano").state_dict().items()},
                                str(path))
    with pytest.raises(CheckpointError, match=r"mis-shaped \(stages.0.patch_embed.convs.0.weight"):
        load_strictly(official.build(), str(path))
    with pytest.raises(CheckpointError, match="matches no registered Dual-ViT"):
        load_model({"head.weight": torch.zeros(3, 5)})


@pytest.mark.parametrize("header", [b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......",  # broken JSON
                                    b"\xff\xff\x00\x00\x00\x00\x00\x00{}"],  # a header longer than the file
                         ids=["broken-json", "length-past-the-end"])
@pytest.mark.slow
def test_app_refuses_a_corrupt_safetensors_file_with_one_line(tmp_path, header):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(header)
    result = subprocess.run([sys.executable, "app.py", "--weights", str(corrupt), "--port", "0"],
                            capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        next(line for line in result.stderr.splitlines() if line.startswith("error: corrupt.safetensors is not a readable"))]


def test_timm_fine_tunes_from_an_official_checkpoint(tmp_path):
    """timm.create_model(..., pretrained=True) with an official file (official names, EMA weights, the training
    arguments pickled beside them) and another class count: body loaded, heads new."""
    torch.manual_seed(0)
    official = {key: torch.randn(shape) if shape else torch.tensor(3) for key, shape in read_keys_tsv("dualvit_s").items()}
    path = tmp_path / "dualvit_s.pth.tar"
    torch.save({"state_dict_ema": official, "args": argparse.Namespace(model="dualvit_s")}, path)
    tuned = timm.create_model("dualvit_s", num_classes=10, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    ours = tuned.state_dict()
    assert tuned.head.weight.shape == (10, 448) and tuned.aux_head.weight.shape == (10, 448)
    body = {official_to_ours(key): value for key, value in official.items()
            if not key.startswith(("head.", "aux_head."))}
    assert len(body) == len(official) - 4 and all(torch.equal(ours[key], value) for key, value in body.items())


def test_load_state_dict_is_torchs_own_and_honours_strict_false():
    network = timm.create_model("dualvit_nano")
    before = network.stages[1].blocks[0].norm1.weight.clone()
    partial = {"stages.0.semantic_embed.queries": torch.zeros(64, 32)}
    result = network.load_state_dict(partial, strict=False)
    assert torch.equal(network.stages[0].semantic_embed.queries, torch.zeros(64, 32))
    assert torch.equal(network.stages[1].blocks[0].norm1.weight, before) and len(result.missing_keys) > 100
    with pytest.raises(RuntimeError, match="Missing key"):
        network.load_state_dict(partial)


def test_module_names_are_the_state_dicts_keys_and_no_hook_rewrites_them():
    network = timm.create_model("dualvit_nano")
    semantic_init = network.stages[0].semantic_embed
    assert set(semantic_init.state_dict()) == {name for name, _ in semantic_init.named_parameters()} | \
        {name for name, _ in semantic_init.named_buffers()}
    assert set(network.state_dict()) == {name for name, _ in network.named_parameters()} | \
        {name for name, _ in network.named_buffers()}
    for module in network.modules():
        assert not module._state_dict_hooks and not module._state_dict_pre_hooks, type(module).__name__
        assert not module._load_state_dict_pre_hooks and not module._load_state_dict_post_hooks, type(module).__name__


def test_a_file_in_this_projects_earlier_layout_loads_strictly():
    """The shipped weights were written when the semantic init's attention was stored under official-like names."""
    from model.bundle import DEFAULT_WEIGHTS

    stored = safetensors.torch.load_file(str(DEFAULT_WEIGHTS))
    assert "stages.0.semantic_embed.query_norm.weight" in stored  # the earlier layout, as shipped
    network = load_model(DEFAULT_WEIGHTS)
    assert torch.equal(network.stages[0].semantic_embed.attention.norm.weight,
                       stored["stages.0.semantic_embed.query_norm.weight"])
    attention = network.stages[0].semantic_embed.attention
    assert torch.equal(attention.q.bias, stored["stages.0.semantic_embed.query_proj.bias"])
    assert torch.equal(attention.kv.weight, stored["stages.0.semantic_embed.kv.weight"])
