"""Reading, converting and strictly loading Dual-ViT weights.

A source is a state dict, a ``.safetensors`` file, an official ``.pth``/``.pth.tar`` checkpoint in
any layout the official training code wrote, or a Hugging Face Hub reference
``hf://OWNER/REPO/PATH/IN/REPO[@REVISION]``. Pickled checkpoints are opened with
``torch.load(weights_only=True)`` and only ``argparse.Namespace`` (the training arguments stored
under ``args``) is allowed besides tensors and containers: nothing in a file can run code.

Usage::

    python -m model.weights convert dualvit_s.pth.tar dualvit_s.safetensors
"""
from __future__ import annotations

import argparse
import pickle
import re
import sys
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

HUB_PREFIX = "hf://"
# Keys under which training scripts nest the weights, in order of preference (EMA first, as timm).
NESTING_KEYS = ("state_dict_ema", "state_dict", "model")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# The official training script pickles its arguments (an argparse.Namespace, plain data) beside the
# weights; timm's own loader allows the same one class.
ALLOWED_PICKLE_GLOBALS = [argparse.Namespace]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


# Official key -> our key. Stage numbers are 1-based officially and 0-based in ``stages``;
# ``{stage}`` in a replacement receives the 0-based index. The first matching prefix rule
# applies, then the first matching block rule.
OFFICIAL_PREFIX_RENAMES: list[tuple[str, str]] = [
    (r"^patch_embed1\.conv\.", "stages.0.patch_embed.convs."),
    (r"^patch_embed(?P<stage>[1-4])\.", "stages.{stage}.patch_embed."),
    (r"^block(?P<stage>[1-4])\.", "stages.{stage}.blocks."),
    (r"^norm_proxy(?P<stage>[1-3])\.", "stages.{stage}.semantic_norm."),
    (r"^norm4\.", "norm."),
    (r"^norm(?P<stage>[1-3])\.", "stages.{stage}.norm."),
    (r"^proxy_embed(?P<stage>[2-4])\.proj_proxy\.0\.", "stages.{stage}.semantic_embed.proj."),
    (r"^proxy_embed(?P<stage>[2-4])\.proj_proxy\.1\.", "stages.{stage}.semantic_embed.norm."),
    (r"^q$", "stages.0.semantic_embed.queries"),
    (r"^q_embed\.0\.", "stages.0.semantic_embed.attention.norm."),
    (r"^q_embed\.1\.", "stages.0.semantic_embed.attention.q."),
    (r"^kv\.", "stages.0.semantic_embed.attention.kv."),
    (r"^proxy_ln\.", "stages.0.semantic_embed.norm."),
    (r"^se\.0\.", "stages.0.semantic_embed.gate.fc1."),
    (r"^se\.2\.", "stages.0.semantic_embed.gate.fc2."),
    (r"^post_network\.0\.", "class_block."),
]
DUAL_BLOCK = r"^(?P<block>stages\.[01]\.blocks\.\d+)\."
MERGE_BLOCK = r"^(?P<block>stages\.[23]\.blocks\.\d+)\."
OFFICIAL_BLOCK_RENAMES: list[tuple[str, str]] = [
    (DUAL_BLOCK + r"attn\.qkv_proxy\.0\.", "{block}.semantic_self.norm."),
    (DUAL_BLOCK + r"attn\.qkv_proxy\.1\.", "{block}.semantic_self.qkv."),
    (DUAL_BLOCK + r"attn\.gamma1$", "{block}.semantic_self.layer_scale.gamma"),
    (DUAL_BLOCK + r"attn\.q_proxy_ln\.", "{block}.semantic_to_pixel.norm."),
    (DUAL_BLOCK + r"attn\.q_proxy\.", "{block}.semantic_to_pixel.q."),
    (DUAL_BLOCK + r"attn\.kv_proxy\.", "{block}.semantic_to_pixel.kv."),
    (DUAL_BLOCK + r"attn\.gamma2$", "{block}.semantic_to_pixel.layer_scale.gamma"),
    (DUAL_BLOCK + r"attn\.p_ln\.", "{block}.semantic_mlp.norm."),
    (DUAL_BLOCK + r"attn\.mlp_proxy\.0\.", "{block}.semantic_mlp.mlp.fc1."),
    (DUAL_BLOCK + r"attn\.mlp_proxy\.2\.", "{block}.semantic_mlp.mlp.fc2."),
    (DUAL_BLOCK + r"attn\.gamma3$", "{block}.semantic_mlp.layer_scale.gamma"),
    (DUAL_BLOCK + r"attn\.proxy_ln\.", "{block}.pixel_to_semantic.kv_norm."),
    (DUAL_BLOCK + r"attn\.(?P<layer>q|kv|proj)\.", "{block}.pixel_to_semantic.{layer}."),
    (MERGE_BLOCK + r"mlp\.fc_proxy\.0\.", "{block}.semantic_mlp.fc1."),
    (MERGE_BLOCK + r"mlp\.fc_proxy\.2\.", "{block}.semantic_mlp.fc2."),
    (r"^(?P<block>stages\.\d\.blocks\.\d+)\.mlp\.dwconv\.dwconv\.", "{block}.mlp.dwconv."),
    (r"^(?P<block>stages\.\d\.blocks\.\d+)\.gamma(?P<index>[12])$", "{block}.layer_scale{index}.gamma"),
]


# Files written by this project before its module names became its keys (the shipped weights among
# them) named the semantic init's attention after the official layout: ours -> now.
EARLIER_RENAMES: list[tuple[str, str]] = [
    (r"^stages\.0\.semantic_embed\.query_norm\.", "stages.0.semantic_embed.attention.norm."),
    (r"^stages\.0\.semantic_embed\.query_proj\.", "stages.0.semantic_embed.attention.q."),
    (r"^stages\.0\.semantic_embed\.kv\.", "stages.0.semantic_embed.attention.kv."),
]


def _apply_first(rules: list[tuple[str, str]], key: str) -> str:
    for pattern, template in rules:
        match = re.match(pattern, key)
        if match:
            groups = match.groupdict()
            if "stage" in groups:
                groups["stage"] = str(int(groups["stage"]) - 1)
            return template.format(**groups) + key[match.end():]
    return key


def official_to_ours(key: str) -> str:
    return _apply_first(OFFICIAL_BLOCK_RENAMES, _apply_first(OFFICIAL_PREFIX_RENAMES, key))


def is_official(state_dict: Mapping[str, Any]) -> bool:
    return "patch_embed1.proj.weight" in state_dict or "q" in state_dict


def unwrap_checkpoint(checkpoint: Any) -> dict[str, torch.Tensor]:
    """The flat state dict inside a checkpoint, without DDP/compile prefixes."""
    while isinstance(checkpoint, Mapping) and not _is_state_dict(checkpoint):
        nested = next((key for key in NESTING_KEYS if isinstance(checkpoint.get(key), Mapping)), None)
        if nested is None:
            raise CheckpointError(
                f"no weights found in the checkpoint: expected tensors, or a dict under one of "
                f"{', '.join(NESTING_KEYS)}; found keys {sorted(map(str, checkpoint))[:8]}")
        checkpoint = checkpoint[nested]
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"a checkpoint must hold a dict of tensors, not {type(checkpoint).__name__}")
    state_dict = {}
    for key, value in checkpoint.items():
        while key.startswith(WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        state_dict[key] = value
    return state_dict


def _is_state_dict(mapping: Mapping) -> bool:
    return len(mapping) > 0 and all(isinstance(value, torch.Tensor) for value in mapping.values())


def to_our_keys(checkpoint: Any) -> dict[str, torch.Tensor]:
    """The checkpoint's weights under our module names, whichever layout wrote them."""
    state_dict = unwrap_checkpoint(checkpoint)
    rename = official_to_ours if is_official(state_dict) else partial(_apply_first, EARLIER_RENAMES)
    return {rename(key): value for key, value in state_dict.items()}


def checkpoint_filter_fn(checkpoint: Any, model: torch.nn.Module, strict: bool = True) -> dict[str, torch.Tensor]:
    """timm's filter: a checkpoint in any layout (official or ours, wrapped or not) as our keys for ``model``.

    Heads trained for another class count are left as the model initialised them (fine-tuning, as
    timm does). With ``strict``, CheckpointError names the first missing, unexpected and mis-shaped
    keys with a count of the rest, and the architecture the checkpoint looks like.
    """
    original = to_our_keys(checkpoint)
    own = model.state_dict()
    state_dict = original
    if "head.weight" in state_dict and "head.weight" in own and state_dict["head.weight"].shape != own["head.weight"].shape:
        state_dict = {key: value for key, value in state_dict.items() if not key.startswith(HEAD_PREFIXES)}
        state_dict.update({key: value for key, value in own.items() if key.startswith(HEAD_PREFIXES)})
    if strict and _problems(state_dict, own):
        # Said of the checkpoint as it is, heads included: they tell which model it belongs to.
        name = getattr(model, "pretrained_cfg", {}).get("architecture") or type(model).__name__
        problems = _problems(original, own)
        hint = ""
        mismatches = _mismatches(original, own)
        if any(key.startswith("aux_head.") for key in mismatches["missing"] + mismatches["unexpected"]):
            hint = " (the token-labeling head aux_head differs: build with token_label matching the checkpoint)"
        raise CheckpointError(f"the checkpoint does not fit {name}{hint}: {'; '.join(problems)}. "
                              f"It looks like {describe_checkpoint(original)}.")
    return state_dict


def _mismatches(state_dict: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    return {
        "missing": [key for key in own if key not in state_dict],
        "unexpected": [key for key in state_dict if key not in own],
        "mis-shaped": [key for key, value in own.items() if key in state_dict and state_dict[key].shape != value.shape],
    }


def _problems(state_dict: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> list[str]:
    """One phrase per kind of mismatch: its count and its first keys."""
    problems = []
    for label, keys in _mismatches(state_dict, own).items():
        if label == "mis-shaped":
            keys = [f"{key} (checkpoint {tuple(state_dict[key].shape)}, model {tuple(own[key].shape)})" for key in keys]
        if keys:
            more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
            problems.append(f"{len(keys)} {label} ({', '.join(keys[:SHOWN_KEYS])}{more})")
    return problems


HEAD_PREFIXES = ("head.", "aux_head.")
SHOWN_KEYS = 3


def check_fits(state_dict: Mapping[str, torch.Tensor], architecture: str, config: Mapping[str, Any] = {}) -> None:
    """Raise CheckpointError unless ``state_dict`` loads strictly into ``architecture`` (built on no memory)."""
    import timm

    import model as _registry  # noqa: F401  (registers the architectures with timm)

    with torch.device("meta"):
        network = timm.create_model(architecture, **{**infer_model_kwargs(state_dict), **config})
    checkpoint_filter_fn(state_dict, network)


def describe_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> str:
    """What a checkpoint (our keys) holds, read from its keys and shapes: a registered Dual-ViT, or its sizes."""
    blocks: dict[int, set[int]] = {}
    for key in state_dict:
        match = re.match(r"^stages\.(\d)\.blocks\.(\d+)\.", key)
        if match:
            blocks.setdefault(int(match[1]), set()).add(int(match[2]))
    if not blocks:
        return "no Dual-ViT (none of its keys are a Dual-ViT's, official or ours)"
    kwargs = infer_model_kwargs(state_dict)
    head = f"{kwargs['num_classes']} classes" + (", a token-labeling head" if kwargs["token_label"] else "")
    try:
        return f"{infer_architecture(state_dict)} with {head}"
    except CheckpointError:
        depths = "-".join(str(len(blocks.get(stage, ()))) for stage in range(4))
        widths = "-".join(str(state_dict[f"stages.{stage}.blocks.0.norm1.weight"].shape[0])
                          if f"stages.{stage}.blocks.0.norm1.weight" in state_dict else "?" for stage in range(4))
        return f"a Dual-ViT of no registered size (blocks per stage {depths}, widths {widths}) with {head}"


def parse_hub_reference(reference: str) -> tuple[str, str, str | None]:
    """``hf://owner/repo/path/file.safetensors[@revision]`` -> (repo_id, filename, revision)."""
    body = reference[len(HUB_PREFIX):]
    body, _, revision = body.partition("@")
    parts = body.split("/")
    if len(parts) < 3 or not all(parts):
        raise CheckpointError(f"a Hub reference reads hf://OWNER/REPO/FILENAME[@REVISION], not {reference!r}")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision or None


def resolve_source(source: str | Path) -> Path:
    """A local path for a file, a Hub reference, a named checkpoint or a URL (the last three come from,
    or go to, the local cache)."""
    from model import pretrained

    if pretrained.named(source) is not None or pretrained.is_url(source):
        return pretrained.fetch(source)
    if isinstance(source, str) and source.startswith(HUB_PREFIX):
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        repo_id, filename, revision = parse_hub_reference(source)
        try:
            return Path(hf_hub_download(repo_id, filename, revision=revision))
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
            raise CheckpointError(f"could not get {filename} from the Hub repository {repo_id}: {error}") from error
    path = Path(source)
    if not path.is_file():
        hint = f" (named checkpoints: {', '.join(pretrained.NAMED_WEIGHTS)})" if "/" not in str(source) else ""
        raise CheckpointError(f"no checkpoint file at {path}{hint}")
    return path


@contextmanager
def safetensors_file(path: Path) -> Iterator[Any]:
    """The opened file; a broken header or a length past the end is a CheckpointError, not a traceback."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as stored:
            yield stored
    except safetensors.SafetensorError as error:
        raise CheckpointError(f"{path.name} is not a readable safetensors file: {error}") from error


def safetensors_metadata(source: Any) -> dict[str, str]:
    """The metadata of a safetensors source (empty for anything else)."""
    if isinstance(source, (str, Path)) and str(source).endswith(".safetensors"):
        with safetensors_file(resolve_source(source)) as stored:
            return dict(stored.metadata() or {})
    return {}


def read_checkpoint(source: Any) -> dict[str, torch.Tensor]:
    """The state dict of ``source`` with our key names."""
    if isinstance(source, Mapping):
        return to_our_keys(source)
    path = resolve_source(source)
    if path.suffix == ".safetensors":
        with safetensors_file(path) as stored:
            return to_our_keys({key: stored.get_tensor(key) for key in stored.keys()})
    try:
        with torch.serialization.safe_globals(ALLOWED_PICKLE_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch names the first forbidden object on a line of its own ("... GLOBAL posix.system ...").
        forbidden = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), None)
        if forbidden is None:
            raise CheckpointError(f"{path.name} is not a readable PyTorch checkpoint (truncated or corrupt?): "
                                  f"{str(error).splitlines()[-1]}") from error
        raise CheckpointError(
            f"refused to open {path.name}: it holds pickled objects that are not weights, and unpickling "
            f"them could run code ({forbidden}). Only tensors and training arguments are accepted.") from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointError(f"{path.name} is not a readable PyTorch checkpoint (truncated or corrupt?): {error}") from error
    return to_our_keys(checkpoint)


def infer_model_kwargs(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments a checkpoint implies: its class count and whether it has a token-labeling head."""
    head = state_dict.get("head.weight")
    return {"num_classes": head.shape[0] if head is not None else 0,
            "token_label": any(key.startswith("aux_head.") for key in state_dict)}


def infer_architecture(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The registered Dual-ViT whose parameter shapes match the checkpoint's."""
    import timm

    kwargs = infer_model_kwargs(state_dict)
    shapes = {key: tuple(value.shape) for key, value in state_dict.items()}
    for name in timm.list_models("dualvit_*"):
        with torch.device("meta"):
            candidate = timm.create_model(name, **kwargs)
        if {key: tuple(value.shape) for key, value in candidate.state_dict().items()} == shapes:
            return name
    raise CheckpointError("the checkpoint matches no registered Dual-ViT "
                          f"({', '.join(timm.list_models('dualvit_*'))}); name the architecture explicitly")


def load_model(source: Any, architecture: str | None = None, **kwargs: Any) -> torch.nn.Module:
    """Build the model a checkpoint needs (architecture, classes, token labeling) and load it strictly.

    ``architecture`` may carry a pretrained tag (``dualvit_s.in1k_384``), which sets the input size; a
    named checkpoint brings its own."""
    import timm

    from model import pretrained

    state_dict = read_checkpoint(source)
    entry = pretrained.named(source)
    if entry is not None:
        architecture, kwargs = architecture or entry.architecture, {**entry.config, **kwargs}
    architecture = architecture or infer_architecture(state_dict)
    known = timm.list_models("dualvit_*")
    if architecture.split(".")[0] not in known:
        raise CheckpointError(f"unknown architecture {architecture!r}; known: {', '.join(known)}")
    network = timm.create_model(architecture, **{**infer_model_kwargs(state_dict), **kwargs})
    network.load_state_dict(checkpoint_filter_fn(state_dict, network), strict=True)
    return network.eval()


def convert(source: Any, destination: Path) -> None:
    """Write ``source`` as a safetensors file with our key names."""
    state_dict = {key: value.detach().contiguous() for key, value in read_checkpoint(source).items()}
    safetensors.torch.save_file(state_dict, str(destination), metadata={"format": "pt"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.weights", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    convert_parser = commands.add_parser("convert", help="official .pth/.pth.tar (or any source) to .safetensors")
    convert_parser.add_argument("source")
    convert_parser.add_argument("destination", type=Path)
    arguments = parser.parse_args(argv)
    try:
        convert(arguments.source, arguments.destination)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {arguments.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
