"""Dual Vision Transformer (Yao et al., "Dual Vision Transformer", TPAMI 2023, arXiv 2207.04976).

Written from the paper and checked against the official implementation's outputs
(``tests/data``). Four stages at strides 4/8/16/32, as in PVT:

* before stage 1, M learned semantic queries (an 8x8 grid) attend over the 7x7-average-pooled
  stage-1 map; an SE gate mixes each result with its own pooled cell, so token j starts in cell j;
* stages 1-2 hold **Dual blocks**: a semantic path (token self-attention, tokens querying every
  pixel, an MLP) and a pixel path in which each pixel queries only the M tokens (N x M attention);
* stages 3-4 hold **Merge blocks**: pixels and tokens concatenated, one joint self-attention,
  separate MLPs;
* the head is one class-attention block over [mean token, pixels, tokens]; with token labeling an
  auxiliary per-pixel head adds ``0.5 * max`` over pixels to the logits.

Every attention runs through the fused ``scaled_dot_product_attention`` kernel, unless somebody
listens: each has an :class:`AttentionProbe`, and when ``model.capture`` hooks one, that attention
forms its probabilities, hands them through the probe, and takes its output from those very
probabilities (as the official code does): each map is formed once, and the output moves from the
fused kernel's by float32 rounding only.

Module names are ours (``semantic_to_pixel`` rather than ``attn.q_proxy``) and are the state dict's
keys; official checkpoints are converted once, by ``checkpoint_filter_fn`` in :mod:`model.weights`.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, LayerScale, Mlp, trunc_normal_

from model.map_names import CLASS_ATTENTION, MERGE_PART, SEMANTIC_INIT, MapName

# The learned semantic queries form this grid; the stage-1 map is average-pooled by POOL_SIZE,
# so a 224 input (56x56 at stage 1) gives exactly one pooled cell per query.
QUERY_GRID = 8
POOL_SIZE = 7
OFFICIAL_LAYER_SCALE_INIT = 1e-6


class Grid(NamedTuple):
    height: int
    width: int

    @property
    def size(self) -> int:
        return self.height * self.width


class StageFeatures(NamedTuple):
    """Pixel tokens (B, N, C) on their grid and the semantic tokens (B, M, C) after the last stage."""

    pixels: torch.Tensor
    semantics: torch.Tensor
    grid: Grid


class AttentionProbe(nn.Module):
    """Identity on attention probabilities (B, heads, queries, keys): the hook point for capture."""

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        return probs

    @property
    def listening(self) -> bool:
        # Only a forward hook can observe the probabilities; without one they are never formed.
        return bool(self._forward_hooks)


def pooled_grid(stage1_grid: Grid) -> Grid:
    """The grid of semantic-token home cells: the stage-1 grid average-pooled by 7 (floor)."""
    return Grid(stage1_grid.height // POOL_SIZE, stage1_grid.width // POOL_SIZE)


def split_heads(tokens: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, length, channels = tokens.shape
    return tokens.reshape(batch, length, num_heads, channels // num_heads).transpose(1, 2)


def merge_heads(tokens: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_dim = tokens.shape
    return tokens.transpose(1, 2).reshape(batch, length, heads * head_dim)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, probe: AttentionProbe) -> torch.Tensor:
    """softmax(q k^T * scale) v over (B, heads, length, head_dim) tensors."""
    if probe.listening:
        # The output comes from the very probabilities the listener gets: each map formed once.
        return probe(attention_probabilities(q, k, scale)) @ v
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def attention_probabilities(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    # Scaling q rather than the (queries x keys) scores touches far less memory.
    scores = (q * scale) @ k.transpose(-2, -1)
    if scores.requires_grad:  # training through the probabilities (e.g. a grounding loss)
        return scores.softmax(dim=-1)
    # In place: the scores are the largest buffer capture makes, and a second one costs more
    # (allocation, page faults) than the softmax itself.
    return torch.softmax(scores, dim=-1, out=scores)


class Stem(nn.Module):
    """A stride-2 7x7 convolution, two 3x3 convolutions, then a strided projection: stage 1 sits at stride 4."""

    def __init__(self, in_chans: int, hidden_dim: int, out_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(3):
            if index == 0:
                conv = nn.Conv2d(in_chans, hidden_dim, kernel_size=7, stride=2, padding=3, bias=False)
            else:
                conv = nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False)
            layers += [conv, nn.BatchNorm2d(hidden_dim), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Conv2d(hidden_dim, out_dim, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        return to_tokens(self.proj(self.convs(images)), self.norm)


class Downsample(nn.Module):
    """A strided 3x3 convolution between stages."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        return to_tokens(self.proj(feature_map), self.norm)


def to_tokens(feature_map: torch.Tensor, norm: nn.Module) -> tuple[torch.Tensor, Grid]:
    grid = Grid(*feature_map.shape[-2:])
    return norm(feature_map.flatten(2).transpose(1, 2)), grid


def to_feature_map(tokens: torch.Tensor, grid: Grid) -> torch.Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, grid.height, grid.width)


class DepthwiseConvMlp(nn.Module):
    """PVTv2 feed-forward: a 3x3 depth-wise convolution between the two linear layers."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        # Pixel tokens (B, N, C) are already a channels-last feature map: a channels-last weight
        # lets oneDNN convolve them in place instead of copying to NCHW and back (~10x here).
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, padding=1,
                                groups=hidden_dim).to(memory_format=torch.channels_last)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, pixels: torch.Tensor, grid: Grid) -> torch.Tensor:
        hidden = self.dwconv(to_feature_map(self.fc1(pixels), grid)).flatten(2).transpose(1, 2)
        return self.fc2(self.act(hidden))


class SemanticInit(nn.Module):
    """Stage-1 semantic tokens: learned queries over the pooled map, SE-mixed with the pooled cells."""

    def __init__(self, dim: int, num_queries: int = QUERY_GRID * QUERY_GRID):
        super().__init__()
        self.queries = nn.Parameter(torch.empty(num_queries, dim))
        # One head over the pooled cells; the queries are parameters, so they are normalised and
        # projected, and the cells give keys and values.
        self.attention = ProbedAttention(dim, 1, query_norm=True, proj=False)
        # Squeeze-excitation over the pair (attended, pooled): two weights per channel.
        self.gate = Mlp(dim, dim, out_features=2 * dim, act_layer=partial(nn.ReLU, inplace=True))
        self.norm = nn.LayerNorm(dim)
        trunc_normal_(self.queries, std=0.02)

    def queries_for(self, pooled_grid: Grid) -> torch.Tensor:
        # The official code resizes only when the cell count differs from the query count, so a
        # 64-cell grid of another shape (4x16, say) keeps the queries in row-major order.
        if pooled_grid.size == self.queries.shape[0]:
            return self.queries
        query_grid = self.queries.reshape(QUERY_GRID, QUERY_GRID, -1).permute(2, 0, 1).unsqueeze(0)
        resized = F.interpolate(query_grid, size=tuple(pooled_grid), mode="bicubic")
        return resized.squeeze(0).permute(1, 2, 0).reshape(pooled_grid.size, -1)

    def forward(self, pixels: torch.Tensor, grid: Grid, semantics: torch.Tensor | None = None) -> torch.Tensor:
        pooled_map = F.avg_pool2d(to_feature_map(pixels, grid), POOL_SIZE, stride=POOL_SIZE)
        pooled = pooled_map.flatten(2).transpose(1, 2)  # (B, M, C): cell j is token j's home
        batch, _, channels = pooled.shape
        # A copy per image, not a view of the parameter (FLOP counters hook module inputs; a view has no grad_fn).
        queries = self.queries_for(pooled_grid(grid)).expand(batch, -1, -1).clone()
        candidates = torch.stack([self.attention(queries, pooled), pooled], dim=2)  # (B, M, 2, C)
        weights = self.gate(candidates.sum(2).mean(1)).view(batch, 2, channels).softmax(dim=1)
        return self.norm((candidates * weights.unsqueeze(1)).sum(2))


class SemanticProjection(nn.Module):
    """Carries semantic tokens into the next stage's width; token j stays token j."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, pixels: torch.Tensor, grid: Grid, semantics: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(semantics))


class ProbedAttention(nn.Module):
    """Multi-head attention whose probabilities pass through an :class:`AttentionProbe`.

    ``queries`` (B, Lq, C) attend over ``context`` (B, Lk, C), or over themselves when no context is
    given. Each optional part exists where the official code has it: ``norm`` on the queries' input,
    one ``qkv`` projection (self-attention) or ``q`` and ``kv``, ``kv_norm`` on the context, ``proj``
    on the output, and ``layer_scale`` where the official code scales inside the attention
    (elsewhere the block does).
    """

    def __init__(self, dim: int, num_heads: int, *, joint_qkv: bool = False, query_norm: bool = False,
                 context_norm: bool = False, proj: bool = True, layer_scale_init: float | None = None):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.norm = nn.LayerNorm(dim) if query_norm else nn.Identity()
        self.joint_qkv = joint_qkv
        if joint_qkv:
            self.qkv = nn.Linear(dim, 3 * dim)
        else:
            self.q = nn.Linear(dim, dim)
            self.kv_norm = nn.LayerNorm(dim) if context_norm else nn.Identity()
            self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim) if proj else nn.Identity()
        self.probe = AttentionProbe()
        self.layer_scale = LayerScale(dim, layer_scale_init) if layer_scale_init is not None else nn.Identity()

    def forward(self, queries: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        queries = self.norm(queries)
        if self.joint_qkv:
            q, k, v = (split_heads(t, self.num_heads) for t in self.qkv(queries).chunk(3, dim=-1))
        else:
            q = split_heads(self.q(queries), self.num_heads)
            context = self.kv_norm(queries if context is None else context)
            k, v = (split_heads(t, self.num_heads) for t in self.kv(context).chunk(2, dim=-1))
        return self.layer_scale(self.proj(merge_heads(attend(q, k, v, self.scale, self.probe))))


class SemanticMlp(nn.Module):
    def __init__(self, dim: int, layer_scale_init: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim, act_layer=partial(nn.ReLU, inplace=True))
        self.layer_scale = LayerScale(dim, layer_scale_init)

    def forward(self, semantics: torch.Tensor) -> torch.Tensor:
        return self.layer_scale(self.mlp(self.norm(semantics)))


class DualBlock(nn.Module):
    """Stages 1-2: the semantic path updates the tokens, then the pixels read from them."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float,
                 norm_layer: Callable[[int], nn.Module], layer_scale_init: float):
        super().__init__()
        self.norm1 = norm_layer(dim)
        # The semantic path: tokens attend to each other (no output projection, as in the paper's
        # code), then query every pixel of the stage to gather global context.
        self.semantic_self = ProbedAttention(dim, num_heads, joint_qkv=True, query_norm=True, proj=False,
                                             layer_scale_init=layer_scale_init)
        self.semantic_to_pixel = ProbedAttention(dim, num_heads, query_norm=True, proj=False,
                                                 layer_scale_init=layer_scale_init)
        self.semantic_mlp = SemanticMlp(dim, layer_scale_init)
        # The pixel path: each pixel queries the M tokens, N x M attention instead of N x N.
        self.pixel_to_semantic = ProbedAttention(dim, num_heads, context_norm=True)
        self.layer_scale1 = LayerScale(dim, layer_scale_init)
        self.norm2 = norm_layer(dim)
        self.mlp = DepthwiseConvMlp(dim, int(dim * mlp_ratio))
        self.layer_scale2 = LayerScale(dim, layer_scale_init)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, pixels: torch.Tensor, grid: Grid, semantics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = self.norm1(pixels)
        semantics = semantics + self.drop_path(self.semantic_self(semantics))
        semantics = semantics + self.drop_path(self.semantic_to_pixel(semantics, normed))
        semantics = semantics + self.drop_path(self.semantic_mlp(semantics))
        pixels = pixels + self.drop_path(self.layer_scale1(self.pixel_to_semantic(normed, semantics)))
        pixels = pixels + self.drop_path(self.layer_scale2(self.mlp(self.norm2(pixels), grid)))
        return pixels, semantics


class MergeBlock(nn.Module):
    """Stages 3-4: one attention over pixels and tokens together, then an MLP for each kind."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float,
                 norm_layer: Callable[[int], nn.Module], layer_scale_init: float):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = ProbedAttention(dim, num_heads)  # joint self-attention over [pixels, semantic tokens]
        self.layer_scale1 = LayerScale(dim, layer_scale_init)
        self.norm2 = norm_layer(dim)
        self.mlp = DepthwiseConvMlp(dim, int(dim * mlp_ratio))
        self.semantic_mlp = Mlp(dim, 2 * dim)
        self.layer_scale2 = LayerScale(dim, layer_scale_init)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, tokens: torch.Tensor, grid: Grid) -> torch.Tensor:
        tokens = tokens + self.drop_path(self.layer_scale1(self.attn(self.norm1(tokens))))
        pixels, semantics = self.norm2(tokens).split([grid.size, tokens.shape[1] - grid.size], dim=1)
        mixed = torch.cat([self.mlp(pixels, grid), self.semantic_mlp(semantics)], dim=1)
        return tokens + self.drop_path(self.layer_scale2(mixed))


class Stage(nn.Module):
    """Embed pixels (stem or downsample), bring the semantic tokens in, run the blocks."""

    def __init__(self, patch_embed: nn.Module, semantic_embed: nn.Module, blocks: Sequence[nn.Module],
                 norm: nn.Module | None, semantic_norm: nn.Module | None):
        super().__init__()
        self.patch_embed = patch_embed
        self.semantic_embed = semantic_embed
        self.blocks = nn.ModuleList(blocks)
        self.merged = isinstance(self.blocks[0], MergeBlock)
        # The last stage is normalised after the class-attention block instead (DualViT.norm).
        self.norm = norm
        self.semantic_norm = semantic_norm

    def forward(self, inputs: torch.Tensor, semantics: torch.Tensor | None) -> StageFeatures:
        pixels, grid = self.patch_embed(inputs)
        semantics = self.semantic_embed(pixels, grid, semantics)
        if self.merged:
            tokens = torch.cat([pixels, semantics], dim=1)
            for block in self.blocks:
                tokens = block(tokens, grid)
            pixels, semantics = tokens[:, :grid.size], tokens[:, grid.size:]
        else:
            for block in self.blocks:
                pixels, semantics = block(pixels, grid, semantics)
        if self.norm is not None:
            pixels, semantics = self.norm(pixels), self.semantic_norm(semantics)
        return StageFeatures(pixels, semantics, grid)


class ClassBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, norm_layer: Callable[[int], nn.Module]):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = ProbedAttention(dim, num_heads)  # the class token (first) queries every token
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        normed = self.norm1(tokens)
        cls = tokens[:, :1] + self.attn(normed[:, :1], normed)
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, tokens[:, 1:]], dim=1)


class DualViT(nn.Module):
    """Dual-ViT; the constructor takes the official hyper-parameters by their official names."""

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        stem_hidden_dim: int = 32,
        embed_dims: Sequence[int] = (64, 128, 320, 448),
        num_heads: Sequence[int] = (2, 4, 10, 14),
        mlp_ratios: Sequence[float] = (8, 8, 4, 3),
        drop_path_rate: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        depths: Sequence[int] = (3, 4, 6, 3),
        num_stages: int = 4,
        token_label: bool = True,
        layer_scale_init: float = OFFICIAL_LAYER_SCALE_INIT,
    ):
        super().__init__()
        if num_stages != 4 or not (len(embed_dims) == len(num_heads) == len(depths) == 4):
            raise ValueError("Dual-ViT has four stages: embed_dims, num_heads and depths need four entries")
        self.num_classes = num_classes
        self.token_label = token_label
        self.embed_dims = tuple(embed_dims)
        self.depths = tuple(depths)
        self.num_features = self.head_hidden_size = embed_dims[-1]
        total_depth = sum(depths)
        drop_path_rates = [drop_path_rate * i / max(total_depth - 1, 1) for i in range(total_depth)]

        stages = []
        for index, (dim, heads, depth) in enumerate(zip(embed_dims, num_heads, depths)):
            first, last, merged = index == 0, index == 3, index >= 2
            rates, drop_path_rates = drop_path_rates[:depth], drop_path_rates[depth:]
            blocks = []
            for block_index, rate in enumerate(rates):
                ratio = mlp_ratios[index]
                if index == 2 and block_index % 2 == 1:
                    ratio -= 1  # the official stage 3 alternates mlp ratios 4 and 3
                block_cls = MergeBlock if merged else DualBlock
                blocks.append(block_cls(dim, heads, ratio, rate, norm_layer, layer_scale_init))
            stages.append(Stage(
                patch_embed=Stem(in_chans, stem_hidden_dim, dim) if first else Downsample(embed_dims[index - 1], dim),
                semantic_embed=SemanticInit(dim) if first else SemanticProjection(embed_dims[index - 1], dim),
                blocks=blocks,
                norm=None if last else norm_layer(dim),
                semantic_norm=None if last else norm_layer(dim),
            ))
        self.stages = nn.ModuleList(stages)

        self.class_block = ClassBlock(embed_dims[-1], num_heads[-1], mlp_ratios[-1], norm_layer)
        self.norm = norm_layer(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        if token_label:
            self.aux_head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(init_weights)

    def forward_stages(self, images: torch.Tensor) -> StageFeatures:
        """The four stages: stage 4's pixel and semantic tokens and its grid."""
        features, semantics = images, None
        for stage in self.stages:
            stage_out = stage(features, semantics)
            semantics = stage_out.semantics
            features = stage_out.pixels if stage is self.stages[-1] else to_feature_map(stage_out.pixels, stage_out.grid)
        return stage_out

    def forward_tokens(self, features: StageFeatures) -> torch.Tensor:
        """Class-attention block and final norm over [class token, pixels, semantic tokens]."""
        tokens = torch.cat([features.pixels, features.semantics], dim=1)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        return self.norm(self.class_block(tokens))

    def forward_dense(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, Grid]:
        """Class-head logits, per-pixel aux-head logits (B, N, classes) or None, and the pixel grid."""
        features = self.forward_stages(images)
        tokens = self.forward_tokens(features)
        pixel_logits = self.aux_head(tokens[:, 1:1 + features.grid.size]) if self.token_label else None
        return self.head(tokens[:, 0]), pixel_logits, features.grid

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The final tokens the heads read, (B, 1 + N4, C): the class token, then the stage-4 pixels
        (row-major). The semantic tokens take part in the class attention, but no head reads them."""
        features = self.forward_stages(images)
        return self.forward_tokens(features)[:, :1 + features.grid.size]

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits from :meth:`forward_features`; ``pre_logits`` (or a model without classes): the class
        token's features (B, C). With token labeling, half the strongest per-pixel score is added."""
        if pre_logits or self.num_classes == 0:
            return tokens[:, 0]
        logits = self.head(tokens[:, 0])
        if self.token_label:
            logits = logits + 0.5 * self.aux_head(tokens[:, 1:]).amax(dim=1)
        return logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """New heads for ``num_classes`` (0: none, the model returns the class token's features), as
        initialised at construction; the token-labeling head follows. Dual-ViT pools with its class
        token only, so ``global_pool`` has nothing to choose."""
        if global_pool not in (None, "token"):
            raise ValueError(f"Dual-ViT pools with its class token; global_pool={global_pool!r} is not available")
        self.num_classes = num_classes
        reference = self.stages[0].patch_embed.proj.weight
        for name in ["head", "aux_head"] if self.token_label else ["head"]:
            head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
            head.apply(init_weights)
            setattr(self, name, head.to(reference.device, reference.dtype))

    def attention_probes(self) -> dict[str, AttentionProbe]:
        """Every probe under its canonical name (see ``tests/data/README.md``)."""
        probes = {SEMANTIC_INIT: self.stages[0].semantic_embed.attention.probe}
        for stage_index, stage in enumerate(self.stages, start=1):
            for block_index, block in enumerate(stage.blocks):
                parts = ({MERGE_PART: block.attn} if isinstance(block, MergeBlock) else
                         {"semantic_self": block.semantic_self, "semantic_to_pixel": block.semantic_to_pixel,
                          "pixel_to_semantic": block.pixel_to_semantic})
                for part, attention in parts.items():
                    probes[str(MapName(part, stage_index, block_index))] = attention.probe
        probes[CLASS_ATTENTION] = self.class_block.attn.probe
        return probes


def init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
