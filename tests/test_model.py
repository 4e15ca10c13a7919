"""The architecture against the official implementation and the paper's table."""
from __future__ import annotations

import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

from model.capture import explicit_attention
from model.dualvit import DualViT
from model.weights import checkpoint_filter_fn


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
        features = official_model.forward_stages(images)
        tokens = official_model.forward_features(images)
        logits = official_model(images)
        from_tokens = official_model.forward_head(tokens)
    assert logits.shape == (2, official_model.num_classes)
    # timm's convention: forward_features gives a tensor, forward_head the logits from it.
    assert tokens.shape == (2, 1 + features.grid.size, official_model.num_features)
    assert torch.equal(from_tokens, logits)
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
    network.load_state_dict(checkpoint_filter_fn(official.state_dict, network))
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


@pytest.mark.parametrize("name", ["dualvit_nano", "dualvit_s"])
def test_timm_model_contract(name):
    """timm's checks for a registered model (its tests/test_models.py): the configured classifier and
    first convolution exist, and without classes the model returns its pooled features."""
    network = timm.create_model(name).eval()
    state_dict, config = network.state_dict(), network.pretrained_cfg
    assert f"{config['classifier']}.weight" in state_dict and f"{config['first_conv']}.weight" in state_dict
    assert state_dict[f"{config['first_conv']}.weight"].shape[1] == 3
    images = torch.randn(1, 3, 160, 192)
    with torch.inference_mode():
        features = network.forward_head(network.forward_features(images), pre_logits=True)
        network.reset_classifier(0)
        pooled = network(images)
        network.reset_classifier(7)
        logits = network(images)
    assert pooled.shape == (1, network.num_features) and torch.equal(pooled, features)
    assert logits.shape == (1, 7) and network.num_classes == 7 and network.aux_head.out_features == 7
    with pytest.raises(ValueError, match="pools with its class token"):
        network.reset_classifier(7, "avg")


def test_backward_reaches_every_parameter():
    """timm's backward check: in training mode, a loss on the logits gives every parameter a gradient."""
    torch.manual_seed(0)
    network = timm.create_model("dualvit_nano", num_classes=42).train()
    outputs = network(torch.randn(2, 3, 160, 160))
    outputs.mean().backward()
    missing = [name for name, parameter in network.named_parameters() if parameter.grad is None]
    assert outputs.shape == (2, 42) and not missing and torch.isfinite(outputs).all()
