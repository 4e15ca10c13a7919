"""Turn the official Dual-ViT code into a float64 reference fixture (not part of the test run).

    python tests/data/make_official_fixture.py OFFICIAL_DUALVIT_PY OUT.safetensors --size 160 192

OFFICIAL_DUALVIT_PY is ``classification/dualvit.py`` of github YehLi/ImageNetModel (it imports timm).
The tiny configuration below gets random weights with large gains (peaked attention, layer-scale
gammas near 1), so that a small mistake anywhere moves the numbers visibly. The official model is
run in float64 and in float32 on one random input; every attention map is recorded as it leaves its
softmax, in the order the official forward forms them, and named by the canonical names of this
project's model, whose capture forms them in the same order (checked by shape). The file has the
layout that tests/data/README.md describes.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Iterator

import safetensors.torch
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

CONFIG = {"stem_hidden_dim": 8, "embed_dims": [16, 32, 40, 48], "num_heads": [2, 4, 4, 4],
          "mlp_ratios": [8, 8, 4, 3, 2], "depths": [2, 2, 2, 1], "num_classes": 10, "token_label": True}
# The official constructor's default LayerNorm (its registered models pass eps 1e-6).
LAYER_NORM_EPS = 1e-5


def load_official(path: Path):
    spec = importlib.util.spec_from_file_location("official_dualvit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # timm's registry looks its module up there
    spec.loader.exec_module(module)
    return module


def randomise(network: torch.nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise.abs())
            elif tensor.dim() == 1 and (name.endswith("weight") or "gamma" in name.rsplit(".", 1)[-1]):
                tensor.copy_(1 + 0.2 * noise)  # norms' scales and layer-scale gammas near 1
            elif tensor.dim() == 1:
                tensor.copy_(0.2 * noise)  # biases, running means
            else:
                tensor.copy_(noise * 2.0 / math.sqrt(tensor[0].numel()))


@contextmanager
def recording_softmax(record: list[torch.Tensor]) -> Iterator[None]:
    """Every softmax over the last dimension (an attention's; the SE gate's runs over dim 1)."""
    original = torch.Tensor.softmax

    def softmax(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        dim = args[0] if args else kwargs.get("dim")
        if dim in (-1, self.dim() - 1):
            record.append(out.detach().clone())
        return out

    torch.Tensor.softmax = softmax
    try:
        yield
    finally:
        torch.Tensor.softmax = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("official", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, nargs=2, default=(160, 192), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)

    from model.capture import capture
    from model.dualvit import DualViT
    from model.weights import to_our_keys

    official = load_official(arguments.official)
    generator = torch.Generator().manual_seed(arguments.seed)
    network = official.DualViT(**CONFIG, norm_layer=partial(torch.nn.LayerNorm, eps=LAYER_NORM_EPS)).eval()
    randomise(network, generator)
    state_dict = {key: value.clone() for key, value in network.state_dict().items()}
    images = torch.randn(1, 3, *arguments.size, generator=generator, dtype=torch.float64)

    maps: list[torch.Tensor] = []
    with torch.inference_mode(), recording_softmax(maps):
        logits = network.double()(images)
    with torch.inference_mode():
        fp32_logits = network.float()(images.float())
    fp32_error = (fp32_logits.double() - logits).abs().max().item()

    ours = DualViT(**CONFIG, norm_layer=partial(torch.nn.LayerNorm, eps=LAYER_NORM_EPS)).eval()
    ours.load_state_dict(to_our_keys(state_dict))
    with torch.inference_mode():
        _, trace = capture(ours.double(), images, dtype=torch.float64)
    if len(trace.maps) != len(maps):
        raise SystemExit(f"the official forward formed {len(maps)} attention maps, ours {len(trace.maps)}")
    named = {}
    for (name, expected), recorded in zip(trace.maps.items(), maps):
        recorded = recorded.unsqueeze(1) if recorded.dim() == 3 else recorded  # semantic_init: one head
        if recorded.shape != expected.shape:
            raise SystemExit(f"map {len(named)} ({name}): official shape {tuple(recorded.shape)}, ours {tuple(expected.shape)}")
        named[f"attn.{name}"] = recorded.float().contiguous()

    tensors = {"input": images.contiguous(), "logits": logits.contiguous(), **named,
               **{f"state_dict.{key}": value.contiguous() for key, value in state_dict.items()}}
    metadata = {"config": json.dumps(CONFIG), "input_size": json.dumps(list(arguments.size)),
                "reference": "official code, float64 (logits float64, maps float32)",
                "official_fp32_logit_error": f"{fp32_error:.4g}",
                "generated_by": "official Dual-ViT code (YehLi/ImageNetModel classification/dualvit.py), eval mode, "
                                f"tests/data/make_official_fixture.py --size {arguments.size[0]} {arguments.size[1]} "
                                f"--seed {arguments.seed}"}
    safetensors.torch.save_file(tensors, str(arguments.out), metadata=metadata)
    print(f"wrote {arguments.out}: {len(named)} maps, pooled grid {tuple(trace.semantic_grid)}, "
          f"official float32 logit error {fp32_error:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
