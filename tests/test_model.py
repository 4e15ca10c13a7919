"""The architecture against the official implementation and the paper's table."""
from __future__ import annotations

import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

from model.capture import explicit_attention
from model.dualvit import DualViT


def test_reproduces_official_logits(official, official_model):
    with torch.inference_mode():
        logits = official_model(official.input)
    official.check_fp32_logits(logits)


def test_reproduces_official_logits_in_float64(official, official_model64):
    with torch.inference_mode():
        logits = official_model64(official.input.double())
    torch.testing.assert_close(logits, official.logits, rtol=0, atol=1e-9)


def test_explicit_attention_gives_the_same_logits(official, official_model):
    with torch.inference_mode(), explicit_attention(official_model):
        logits = official_model(official.input)
    official.check_fp32_logits(logits)


@pytest.mark.parametrize("height, width", [(288, 224), (384, 384), (224, 160)])
def test_other_input_sizes_run(official_model, height, width):
    images = torch.randn(2, 3, height, width)
    with torch.inference_mode():
        features = official_model.forward_features(images)
        logits = official_model(images)
    assert logits.shape == (2, official_model.num_classes)
    assert torch.isfinite(logits).all()
    assert features.grid == ((height + 31) // 32, (width + 31) // 32)
    # Semantic tokens: one per 7x7 cell of the stride-4 map (floor).
    assert features.semantics.shape[1] == (height // 4 // 7) * (width // 4 // 7)


def test_stage_three_alternates_mlp_ratio_and_class_block_uses_the_last_ratio():
    network = timm.create_model("dualvit_s")
    stage3 = network.stages[2].blocks
    hidden = [block.mlp.fc1.out_features for block in stage3]
    assert hidden == [320 * 4, 320 * 3] * 3
    assert network.class_block.mlp.fc1.out_features == 448 * 2
    default = DualViT(depths=(1, 1, 2, 1))  # the constructor's own default: mlp_ratios (8, 8, 4, 3)
    assert default.class_block.mlp.fc1.out_features == 448 * 3


def test_token_label_false_has_no_aux_head(official):
    network = official.build(token_label=False)
    assert not hasattr(network, "aux_head")
    with torch.inference_mode():
        assert network(official.input).shape == official.logits.shape


def test_drop_path_only_in_training(official):
    network = official.build(drop_path_rate=0.5)
    network.load_state_dict(official.state_dict)
    with torch.inference_mode():
        official.check_fp32_logits(network(official.input))
    network.train()
    torch.manual_seed(0)
    assert not torch.allclose(network(official.input).double(), official.logits, atol=1e-3)


# The paper's Table: parameters (M) and multiply-accumulates (G); the official code counts
# 5.38 / 9.29 / 17.96 / 18.38 G with FlopCounterMode over explicit attention.
PAPER = [
    ("dualvit_s", 224, 25.1, 5.38),
    ("dualvit_b", 224, 42.6, 9.29),
    ("dualvit_l", 224, 73.0, 17.96),
    ("dualvit_s", 384, 25.1, 18.38),
]


@pytest.mark.parametrize("name, size, params_m, macs_g", PAPER)
def test_parameters_and_macs_match_the_paper(name, size, params_m, macs_g):
    with torch.device("meta"):
        network = timm.create_model(name).eval()
        images = torch.empty(1, 3, size, size)
    with torch.no_grad(), explicit_attention(network), FlopCounterMode(display=False) as counter:
        network(images)
    assert round(sum(p.numel() for p in network.parameters()) / 1e6, 1) == params_m
    assert round(counter.get_total_flops() / 2 / 1e9, 2) == macs_g


def test_timm_pretrained_configs_match_official_evaluation():
    for name in ("dualvit_s", "dualvit_b", "dualvit_l"):
        config = timm.data.resolve_data_config(model=timm.create_model(name))
        assert config["input_size"] == (3, 224, 224) and config["crop_pct"] == 0.875
        assert config["interpolation"] == "bicubic"
        assert int(224 / config["crop_pct"]) == 256
        config_384 = timm.data.resolve_data_config(model=timm.create_model(f"{name}.in1k_384"))
        assert config_384["input_size"] == (3, 384, 384)
