"""The paper's ImageNet checkpoints by name, and weights from a URL, fetched once into the user's cache.

``--weights dualvit_s`` (or ``dualvit_b_384``, ..., see ``python -m model.pretrained list``), a plain
``https://`` URL, and ``timm.create_model("dualvit_s", pretrained=True)`` all come here. A file is
downloaded once (with a progress bar) into the cache, ``$DUALVIT_WEIGHTS_CACHE`` or ``$HF_HOME/dualvit``
(``~/.cache/huggingface/dualvit`` by default); it enters the cache only after it has been read and
found to fit its architecture, and its SHA-256 is recorded then and checked on every later load.
A cached file loads without the network; with ``HF_HUB_OFFLINE=1`` nothing is ever downloaded.

The authors publish the Dual-ViT checkpoints on Baidu Pan only, behind an account, which no script
can download from. So a named checkpoint comes from one of:

* the cache, after ``python -m model.pretrained add dualvit_s FILE`` with a file downloaded by hand;
* a web folder of your own that holds the files under the names below: ``DUALVIT_WEIGHTS_MIRROR``.

Usage::

    python -m model.pretrained list
    python -m model.pretrained add dualvit_s ~/Downloads/dualvit_s.pth.tar
    python -m model.pretrained fetch dualvit_s
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.weights import CheckpointError, check_fits, read_checkpoint

MIRROR_VARIABLE = "DUALVIT_WEIGHTS_MIRROR"
CACHE_VARIABLE = "DUALVIT_WEIGHTS_CACHE"
OFFLINE_VARIABLE = "HF_HUB_OFFLINE"  # Hugging Face's switch, so one setting keeps every download off
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
OFFICIAL_PAGE = "https://github.com/YehLi/ImageNetModel/tree/main/classification"
BAIDU_ACCESS_CODE = "nets"


@dataclass(frozen=True)
class NamedWeights:
    name: str
    architecture: str  # the registered model and its pretrained tag: the tag sets the input size
    title: str
    page: str  # where the authors publish the file
    filename: str  # its name in the cache and in a mirror
    url: str | None = None  # a direct download, where the source offers one
    sha256: str | None = None  # when known in advance; otherwise recorded at the first fetch
    config: Mapping[str, Any] = field(default_factory=dict)  # constructor overrides, for other sizes


def _official(name: str, title: str, baidu: str) -> NamedWeights:
    variant = name.removesuffix("_384")
    tag = "in1k_384" if name.endswith("_384") else "in1k"
    return NamedWeights(name=name, architecture=f"{variant}.{tag}", title=title,
                        page=f"https://pan.baidu.com/s/{baidu}", filename=f"{name}.pth.tar")


# The table of classification/README.md in github YehLi/ImageNetModel (top-1 on ImageNet-1k val).
NAMED_WEIGHTS: dict[str, NamedWeights] = {entry.name: entry for entry in (
    _official("dualvit_s", "Dual-ViT-S, ImageNet-1k, 224 px, top-1 84.1%", "1mJapQgFXs3NYnFUCbsgYwQ"),
    _official("dualvit_s_384", "Dual-ViT-S, ImageNet-1k, 384 px, top-1 85.2%", "19efu-TJ0O5o4jIZXSbcNeg"),
    _official("dualvit_b", "Dual-ViT-B, ImageNet-1k, 224 px, top-1 85.2%", "1d0JmFb1fYrj83Dhz8znUQQ"),
    _official("dualvit_b_384", "Dual-ViT-B, ImageNet-1k, 384 px, top-1 86.0%", "1ujl-tHF5WVJRkb3xRoJoLQ"),
    _official("dualvit_l", "Dual-ViT-L, ImageNet-1k, 224 px, top-1 85.7%", "1UGI4vVj-Oivv7yR0K2bEXg"),
    _official("dualvit_l_384", "Dual-ViT-L, ImageNet-1k, 384 px, top-1 86.5%", "1PyvD3sswCG_66pHQtWw0Rw"),
)}


def named(reference: Any) -> NamedWeights | None:
    return NAMED_WEIGHTS.get(reference) if isinstance(reference, str) else None


def is_url(reference: Any) -> bool:
    return isinstance(reference, str) and reference.startswith(("https://", "http://"))


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HOME).expanduser() / "dualvit"


def offline() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def how_to_get(architecture: str = "dualvit_s") -> str:
    """One line on getting the paper's weights for ``architecture``, for the terminal and the page."""
    name = architecture.split(".")[0] if architecture.split(".")[0] in NAMED_WEIGHTS else "dualvit_s"
    return (f"For the paper's ImageNet weights, restart with `--weights {name}` (or `{name}_384`); the README's "
            "section \"Weights\" says how to get the file once.")


def fetch(reference: str, progress: bool = True) -> Path:
    """The local path of a named checkpoint or a URL, downloading it into the cache the first time."""
    entry = named(reference)
    if entry is not None:
        return _cached_or_fetched(entry.filename, _source_of(entry), entry.sha256, entry, progress)
    if is_url(reference):
        basename = Path(urllib.parse.urlsplit(reference).path).name or "weights"
        key = hashlib.sha256(reference.encode()).hexdigest()[:16]
        return _cached_or_fetched(f"urls/{key}/{basename}", reference, None, None, progress)
    raise CheckpointError(f"{reference!r} is neither a named checkpoint ({', '.join(NAMED_WEIGHTS)}) nor a URL")


def add(name: str, file: Path) -> Path:
    """Put a checkpoint downloaded by hand into the cache under ``name`` (after checking that it fits)."""
    entry = named(name)
    if entry is None:
        raise CheckpointError(f"unknown checkpoint name {name!r}; known: {', '.join(NAMED_WEIGHTS)}")
    file = Path(file)
    if not file.is_file():
        raise CheckpointError(f"no file at {file}")
    digest = _sha256(file)
    if entry.sha256 and digest != entry.sha256:
        raise CheckpointError(f"{file.name} is not {entry.name}: its SHA-256 is {digest}, expected {entry.sha256}")
    check_fits(read_checkpoint(file), entry.architecture, entry.config)
    destination = cache_dir() / entry.filename
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".incomplete")
    shutil.copyfile(file, partial)
    partial.replace(destination)
    _record(destination, digest)
    return destination


def _source_of(entry: NamedWeights) -> str | None:
    mirror = os.environ.get(MIRROR_VARIABLE)
    if mirror:
        return f"{mirror.rstrip('/')}/{entry.filename}"
    return entry.url


def _check_transport(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise CheckpointError(f"refusing to download weights over plain http from {parts.hostname}: use https://")


def _cached_or_fetched(relative: str, url: str | None, sha256: str | None, entry: NamedWeights | None,
                       progress: bool) -> Path:
    destination = cache_dir() / relative
    if destination.is_file():
        _verify(destination, sha256)
        return destination
    if url is not None:
        _check_transport(url)
    if url is None or offline():
        raise CheckpointError(_not_available(destination, url, entry))
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Beside its final place, keeping its suffix (the reader picks the format by it), not yet under its name.
    partial = destination.with_name(f"{destination.stem}.incomplete{destination.suffix}")
    try:
        try:
            torch.hub.download_url_to_file(url, str(partial), progress=progress)
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise CheckpointError(f"could not download {url}: {getattr(error, 'reason', error)}. "
                                  + _manual_route(entry)) from error
        digest = _sha256(partial)
        if sha256 and digest != sha256:
            raise CheckpointError(f"the download from {url} has SHA-256 {digest}, expected {sha256}; "
                                  "it was refused and not cached")
        try:  # read whole before it enters the cache: a truncated zip or safetensors file fails here
            state_dict = read_checkpoint(partial)
            if entry is not None:
                check_fits(state_dict, entry.architecture, entry.config)
        except CheckpointError as error:
            raise CheckpointError(f"the download from {url} is not usable ({error}); it was refused and "
                                  "not cached") from error
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)
    _record(destination, digest)
    return destination


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _record(path: Path, digest: str) -> None:
    _record_path(path).write_text(digest + "\n")


def _sha256(path: Path) -> str:
    with open(path, "rb") as stored:
        return hashlib.file_digest(stored, "sha256").hexdigest()


def _verify(path: Path, expected: str | None) -> None:
    """A cached file must still be the one that was checked when it entered the cache."""
    record = _record_path(path)
    recorded = record.read_text().strip() if record.is_file() else None
    expected = expected or recorded
    if expected is None:
        raise CheckpointError(f"{path} has no recorded checksum (it was not put there by this program): "
                              "delete it, or add the file again with python -m model.pretrained add")
    digest = _sha256(path)
    if digest != expected:
        raise CheckpointError(f"{path} has changed since it was cached (SHA-256 {digest[:16]}…, recorded "
                              f"{expected[:16]}…): delete it and fetch it again")


def _manual_route(entry: NamedWeights | None) -> str:
    if entry is None:
        return "Download the file by hand and pass it with --weights PATH."
    return (f"The authors publish it at {entry.page} (Baidu Pan, access code \"{BAIDU_ACCESS_CODE}\"; it needs a "
            f"Baidu account, so no script can fetch it; list of files: {OFFICIAL_PAGE}). Download it there, then "
            f"pass it with --weights PATH, or add it to the cache once with `python -m model.pretrained add "
            f"{entry.name} PATH` so that --weights {entry.name} finds it; or set {MIRROR_VARIABLE} to a web folder "
            f"that holds {entry.filename}.")


def _not_available(destination: Path, url: str | None, entry: NamedWeights | None) -> str:
    what = f"{entry.name} ({entry.title})" if entry else destination.name
    why = (f"offline ({OFFLINE_VARIABLE} is set)" if offline() and url else "no direct download is known for it")
    source = f" from {url}" if url else ""
    return f"{what} is not in the cache ({destination}) and cannot be fetched{source}: {why}. " + _manual_route(entry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.pretrained", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the named checkpoints, and which are in the cache")
    fetch_parser = commands.add_parser("fetch", help="download a named checkpoint or a URL into the cache")
    fetch_parser.add_argument("reference")
    add_parser = commands.add_parser("add", help="put a checkpoint downloaded by hand into the cache")
    add_parser.add_argument("name", choices=sorted(NAMED_WEIGHTS))
    add_parser.add_argument("file", type=Path)
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "list":
            for entry in NAMED_WEIGHTS.values():
                cached = (cache_dir() / entry.filename).is_file()
                print(f"{entry.name:15} {entry.title:45} {'cached' if cached else entry.page}")
        elif arguments.command == "fetch":
            print(fetch(arguments.reference))
        else:
            print(f"added {add(arguments.name, arguments.file)}")
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
