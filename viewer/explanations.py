"""Short texts shown next to each view, for a reader who knows only the paper's abstract."""
from __future__ import annotations

EXPLANATIONS: dict[str, str] = {
    "prediction": (
        "The classes the model considers most likely for this image, with their probabilities. "
        "The score comes from a class token that attends over all final pixel and semantic tokens "
        "(plus, in models trained with token labeling, half of the strongest per-pixel class score)."
    ),
    "token_gallery": (
        "Dual-ViT keeps a small set of semantic tokens (64 for a 224-pixel input) next to the pixel tokens; "
        "each is a learned query that gathers global information by attending over every pixel of the stage. "
        "Each tile shows where one token looks in the chosen block: bright cells are the pixels it draws most from."
    ),
    "token_detail": (
        "One semantic token's attention over the image, with numbers for how concentrated it is: low entropy "
        "and a small 50% area mean it reads from a few places, values near the maximum mean it spreads evenly. "
        "The box marks its home: the pooled patch of the image it was initialised from, which it is free to leave."
    ),
    "filmstrip": (
        "The same semantic token followed through every block, from stage 1 (fine grid) to stage 4 (coarse grid). "
        "In stages 1-2 (Dual blocks) the token attends only to pixels; in stages 3-4 (Merge blocks) it attends to "
        "pixels and tokens together, and the map shows only its pixel part, so its total can be below one."
    ),
    "pixel_reads": (
        "What the chosen pixel takes from each semantic token. In Dual blocks a pixel attends only to the M "
        "tokens, never to other pixels (an N×M attention instead of N×N), so the bars sum to one; in Merge blocks "
        "the bars are only the token part of its attention, the rest went to other pixels."
    ),
    "ownership": (
        "Each pixel is coloured by the semantic token it reads most, so the image splits into the regions the "
        "tokens serve. Brighter means that token takes a larger share of the pixel's attention to tokens; "
        "dark means the pixel spreads its reads over several tokens."
    ),
    "stages": (
        "The last block of each of the four stages side by side, for one token or averaged over all tokens. "
        "Each stage halves the pixel grid (strides 4, 8, 16, 32), so later maps are coarser."
    ),
    "class_attention": (
        "Where the final class token looks before the classifier: its attention over the stage-4 pixels "
        "(it also attends to itself and to the semantic tokens, not shown). Bright cells contribute most "
        "to the image-level prediction."
    ),
    "semantic_self": (
        "How the semantic tokens attend to each other: row i shows which tokens query token i reads from. "
        "In Dual blocks this is their own self-attention; in Merge blocks it is the token-to-token part of the "
        "joint attention, so rows need not sum to one."
    ),
    "merge_quadrants": (
        "Merge blocks (stages 3-4) concatenate the pixel and semantic tokens and run one self-attention over both. "
        "The bars show, per block, what share of their attention pixels and tokens give to pixels and to tokens "
        "(averaged over queries and heads; each query group's two shares add up to one)."
    ),
    "overlay_controls": (
        "Heads: a block has several attention heads; show their mean, their element-wise maximum or minimum, "
        "or a single head. The colour map and opacity only change the drawing; a shared scale makes maps "
        "comparable, and parts of the photo the model did not see (cropped away) are dimmed."
    ),
}
