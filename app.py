"""Dual-ViT Explorer: ``python app.py [--weights NAME_PATH_URL_OR_HUB_REF] [--model NAME] [--device auto|cpu|cuda]``.

With no arguments it serves the default weights shipped in assets/. ``--weights dualvit_s`` (and the
other names of ``python -m model.pretrained list``) takes the paper's ImageNet checkpoints from the
cache. Weights and model also come from DUALVIT_WEIGHTS and DUALVIT_MODEL, host and port from
Gradio's variables (GRADIO_SERVER_NAME, GRADIO_SERVER_PORT), as on a Hugging Face Space; the
server's limits (``--max-pixels``, ``--concurrent-explanations``, ...) from DUALVIT_* variables.
"""
from __future__ import annotations

import argparse
import os
import sys

import model  # noqa: F401  (registers the Dual-ViT architectures)
from model.allocator import keep_freed_memory
from model.bundle import open_model
from model.pretrained import NAMED_WEIGHTS
from model.weights import CheckpointError
from viewer import help_texts, limits
from viewer.atlas_view import open_atlas
from viewer.service import Explorer
from viewer.ui import build_demo, launch_options


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Explore the attention of Dual-ViT's semantic tokens.")
    parser.add_argument("--weights", default=os.environ.get("DUALVIT_WEIGHTS") or None,
                        help=f"the paper's checkpoint by name ({', '.join(NAMED_WEIGHTS)}), a file (.safetensors, "
                             ".pth, .pth.tar), an https:// URL or hf://OWNER/REPO/FILE; default: $DUALVIT_WEIGHTS, "
                             "else the shipped scene model")
    parser.add_argument("--model", default=os.environ.get("DUALVIT_MODEL") or None,
                        help="architecture (dualvit_s, dualvit_b, dualvit_l, dualvit_nano); default: $DUALVIT_MODEL, "
                             "else read from the weights")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also serve through a public Gradio link")
    parser.add_argument("--atlas", default=os.environ.get("DUALVIT_ATLAS") or None,
                        help="a token atlas folder (python -m atlas build); default: $DUALVIT_ATLAS, else the atlas "
                             "shipped in assets/atlas")
    limits.add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    keep_freed_memory()  # every analysis would otherwise fault its activations and maps in afresh
    try:
        server_limits = limits.from_arguments(arguments)
        bundle = open_model(arguments.weights, arguments.model, arguments.device)
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    banner = help_texts.model_banner(bundle)  # the page's warning, said in the terminal as well
    if banner:
        print("warning: " + banner.replace("⚠️ ", "").replace("**", ""), file=sys.stderr)
    try:
        atlas = open_atlas(arguments.atlas)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: the atlas at {arguments.atlas} cannot be read ({error})", file=sys.stderr)
        return 2
    explorer = Explorer(bundle, server_limits, atlas)
    demo = build_demo(explorer)
    demo.launch(server_name=arguments.host, server_port=arguments.port, share=arguments.share,
                **launch_options(explorer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
