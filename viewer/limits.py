"""What a host can bound: image size, concurrent work and the caches, as flags or environment variables.

The defaults keep the shipped model's server inside 4 GiB and dualvit_s's inside 8 GiB
(docs/memory-and-limits.md). A request over a limit waits in Gradio's queue (concurrency) or is
refused with a message (pixels, a full queue); an analysis pushed out of a cache asks for the image
again. On a Hugging Face Space, set the environment variables in the Space's settings.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields

# Pillow's own decompression-bomb guard stays at this ceiling whatever a host sets: no limit may pass it.
PIXEL_CEILING = 250_000_000


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 40_000_000  # an upload's width × height; larger ones are refused before decoding
    concurrent_analyses: int = 2  # forward passes at once; further requests wait in the queue
    concurrent_explanations: int = 1  # attribution runs at once (each holds gradients for a batch)
    session_analyses: int = 2  # analyses kept per browser session (the page shows the latest)
    cache_mib: int = 512  # analyses and explanations kept in all, across sessions
    queue_size: int = 64  # requests waiting at most; more are refused with "the queue is full"

    def __post_init__(self):
        for setting in fields(self):
            value = getattr(self, setting.name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{flag(setting.name)} must be a whole number of at least 1, not {value!r}.")
        if self.max_pixels > PIXEL_CEILING:
            raise ValueError(f"--max-pixels may be at most {PIXEL_CEILING:,} (asked: {self.max_pixels:,}).")

    @property
    def cache_bytes(self) -> int:
        return self.cache_mib << 20


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def environment_variable(name: str) -> str:
    return "DUALVIT_" + name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per limit, defaulting to its environment variable, then to the built-in default."""
    group = parser.add_argument_group("limits", "what the server may hold and run at once "
                                                "(each also read from the environment variable named)")
    for setting in fields(Limits):
        variable = environment_variable(setting.name)
        group.add_argument(flag(setting.name), dest=setting.name, default=os.environ.get(variable),
                           metavar="N", help=f"default {setting.default:,}; ${variable}")


def from_arguments(arguments: argparse.Namespace) -> Limits:
    """The limits given on the command line or in the environment; ValueError names a bad one."""
    given = {}
    for setting in fields(Limits):
        text = getattr(arguments, setting.name, None)
        if text is None:
            continue
        try:
            given[setting.name] = int(str(text).replace("_", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"{flag(setting.name)} (or ${environment_variable(setting.name)}) must be a whole "
                             f"number, not {text!r}.") from None
    return Limits(**given)
