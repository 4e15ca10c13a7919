"""The page's words: short texts next to each view, for a reader who knows only the paper's abstract,
and plain statements of what the loaded model knows and what its prediction means."""
from __future__ import annotations

from analysis.trace_maths import BlockRef, stands_out
from model.bundle import ASSETS, RANDOM_WEIGHTS, ModelBundle
from model.pretrained import how_to_get
from model.trace import Trace

EVIDENCE_FILE = ASSETS / "EXPLANATIONS.md"
# A multi-label model that gives no class more than this is taken to see none of its classes.
PRESENT = 0.5
IMAGENET_CLASSES = 1000

SEMANTIC_TOKENS = (
    "**Semantic tokens**, in one paragraph: besides the grid of pixel tokens (one per image patch), Dual-ViT "
    "keeps a small set of *global semantic tokens*, 64 for a 224-pixel image, each starting from one cell of "
    "an 8×8 grid over the image (its *home*). In every block each token gathers information from **all** "
    "pixels (a weighted average; the weights are its attention map), and each pixel reads the tokens back, "
    "instead of every pixel reading every other pixel. The maps below show those weights: where each token "
    "looks, and which token each pixel listens to."
)

EXPLANATIONS: dict[str, str] = {
    "prediction": (
        "The classes the model considers most likely for this image, with their probabilities. The heading is "
        "its answer: for a model that scores each class on its own (then the bars need not add up to 100%), every "
        "class above 50%, or none of them. "
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
        "The cyan box marks its home: the pooled patch of the image it was initialised from, which it is free to "
        "leave."
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
    "pixel_owner": (
        "The map of the token the pixel under the pointer reads most (its owner), with its home cell: as the "
        "pointer crosses the photo, the owner changes where the ownership map below changes colour."
    ),
    "compare": (
        "The same token on two images, or on one image at two blocks: move the pointer over either picture and "
        "the same spot (in each image's own coordinates) is read on both. On the shared colour scale one key "
        "serves the pair. Analyse a second image above; without one, the right-hand side shows this image at the "
        "block chosen for it."
    ),
    "ownership": (
        "Each pixel is coloured by the semantic token it reads most, so the image splits into the regions the "
        "tokens serve; regions that touch never share a colour. The largest regions carry their token's number. "
        "Hover over a region to light it and name its token, click to show that region alone. This map is the "
        "pixels' side (pixel_to_semantic: which token each pixel reads); the token tiles are the tokens' side (semantic_to_pixel: where each token looks), so a token can own a whole "
        "object while looking at only part of it."
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
        "or a single head (only the heads the block has are offered; views that span stages use the mean where "
        "a block lacks that head). Colour scale: *per map* colours each map from 0 to its own peak (to compare "
        "where maps look), *shared* puts the maps shown together on one range (to compare how much), *mass* "
        "fills the smallest regions holding 50%, 80% and 95% of each map's mass. Maps are drawn over the photo in "
        "grey, so every colour is the map's; colour grows more opaque with the value, so low attention leaves the "
        "grey photo showing. Large pictures outline the fewest cells holding half of a map's mass; tiles show the "
        "heat alone. Parts of the photo the model did not see (cropped away) are dimmed."
    ),
    "atlas": (
        "What a token does in general, not on one image: the atlas ran the model over a whole dataset and kept, for "
        "every token of every block, the images where it gathers the most mass in one crop, how much of its mass "
        "stays in its home cell or falls on objects (against what uniform attention would put there), and the "
        "classes whose objects it covers. A token that follows objects wherever they are is semantic; one that "
        "stays near its home cell is positional."
    ),
    "explanations": (
        "Attention shows where tokens look, not what drives the prediction. These methods ask the second question "
        "for one class, each in its own way; the evidence table at the foot of this tab measures how well each "
        "finds the objects in generated scenes and how faithful it is to the model."
    ),
}


def model_banner(bundle: ModelBundle) -> str:
    """A warning for weights whose maps and classes mean nothing ("" for trained weights)."""
    if bundle.trained:
        return ""
    what = (f"{bundle.architecture} runs with randomly initialised weights" if bundle.weights == RANDOM_WEIGHTS
            else f"`{bundle.weights}` ({bundle.architecture}) is randomly initialised")
    return (f"⚠️ **Untrained weights.** {what}: its "
            "attention maps show the architecture's wiring on noise, and its predictions mean nothing. "
            + how_to_get(bundle.architecture))


def model_statement(bundle: ModelBundle) -> str:
    """What the loaded weights know, in plain words, shown next to the prediction."""
    classes = len(bundle.class_names)
    if not bundle.trained:
        return (f"Weights: **{bundle.weights}** ({bundle.architecture}), **not trained**: its {classes} class "
                "names are placeholders and every score below is noise.")
    if classes == IMAGENET_CLASSES and bundle.domain.startswith("ImageNet"):
        return (f"Weights: **{bundle.weights}** ({bundle.architecture}), trained on ImageNet-1k: it knows 1,000 "
                "everyday object and animal classes and gives any image one of them, even when none is there.")
    names = ", ".join(display_name(name) for name in bundle.class_names[:12])
    more = f" and {classes - 12} more" if classes > 12 else ""
    statement = (f"Weights: **{bundle.weights}** ({bundle.architecture}), trained on {bundle.domain}. It knows "
                 f"{classes} classes ({names}{more}); on other images its classes mean nothing.")
    if bundle.token_training:
        statement += (f" Its semantic tokens were {bundle.token_training}: their maps show what that training asks "
                      "for, not only what the architecture finds on its own.")
    return statement


def display_name(class_name: str) -> str:
    """A class as the page writes it ("letter_A" is "letter A")."""
    return class_name.replace("_", " ")


def classes_present(trace: Trace) -> list[str]:
    """A multi-label model's answer: the display names of the classes that pass ``PRESENT``, highest first."""
    return [display_name(name) for name, p in trace.top_classes(len(trace.class_names)) if p >= PRESENT]


def prediction_heading(trace: Trace, bundle: ModelBundle) -> str:
    """The Prediction box's large heading: the model's answer, which is not always its top class.

    A multi-label model answers with every class that passes ``PRESENT``, or with none; printing its top
    class there would read as an answer the verdict beside it denies."""
    if not bundle.trained:
        return "noise (untrained weights)"
    if not trace.multi_label:
        return display_name(trace.top_classes(1)[0][0])
    return ", ".join(classes_present(trace)) or "none of its classes"


def prediction_verdict(trace: Trace, bundle: ModelBundle) -> str:
    """One sentence that says how far to trust the top classes shown."""
    (name, probability), = trace.top_classes(1)
    if not bundle.trained:
        return "Untrained weights: these scores are noise, not a prediction."
    if trace.multi_label:
        present = classes_present(trace)
        if not present:
            return (f"**None of its classes**: no class passes {PRESENT:.0%} (the highest, "
                    f"{display_name(name)}, has {probability:.0%}), so the model sees none of the things it "
                    "knows in this image.")
        return (f"Classes above {PRESENT:.0%}: **{', '.join(present)}** (each class is scored on "
                "its own). On an image unlike its training scenes these scores mean nothing, however high.")
    return (f"Top class: **{display_name(name)}** ({probability:.0%}). The scores always add up to 100% over its "
            "classes, so a high score does not mean the object is really there.")


def caution_stamp(trace: Trace, bundle: ModelBundle) -> str:
    """The caution every exported picture of this image carries ("" for none): untrained weights, or a multi-label
    model that finds none of its classes (the image lies outside what it knows)."""
    if not bundle.trained:
        return ("UNTRAINED WEIGHTS: these maps show the architecture's wiring on noise, and its classes mean "
                "nothing.")
    if trace.multi_label and not classes_present(trace):
        return (f"OUTSIDE WHAT THE MODEL KNOWS: none of its classes passes {PRESENT:.0%} on this image; its maps "
                "show where it looks, not what is there.")
    return ""


def prediction_line(trace: Trace, bundle: ModelBundle) -> str:
    """The prediction in a figure's context line: the answer and the top class's probability."""
    (name, probability), = trace.top_classes(1)
    answer = prediction_heading(trace, bundle)
    return f"prediction: {answer}" + (f" (top class {display_name(name)}, {probability:.0%})"
                                      if bundle.trained else "")


def explained_class(trace: Trace, class_index: int | None) -> tuple[str, str]:
    """(what an explanation is of, a caution or ""): e.g. ('"arrow" (4%)', 'The model gives "arrow" only 4% ...').

    Under one half the class is not what the model sees here, and the map shows what little speaks for it,
    not where it is; the page says so beside the map."""
    if class_index is None:
        return "", ""
    name = display_name(trace.class_names[class_index])
    probability = float(trace.probabilities[0, class_index])
    subject = f'"{name}" ({probability:.0%})'
    if probability >= PRESENT:
        return subject, ""
    return subject, (f'The model gives "{name}" only {probability:.0%}: it does not see this class here, so the '
                     "map shows what little speaks for it, not where the thing is.")


def opening_said(trace, opening: BlockRef) -> str:
    """Why the page opened on ``opening``, in words: regions, spread, or nothing standing out at all."""
    if not stands_out(trace, opening):
        return (f"Opened on {opening.label}, the last Dual block: no block's token maps stand out from uniform "
                "attention (each token looks almost evenly everywhere), so every map is drawn faint.")
    return f"Opened on {opening.label}, " + ("the last Dual block whose tokens show regions." if opening.kind == "dual"
                                              else "the block whose tokens spread most.")


def evidence_markdown() -> str:
    """The evidence table for the attribution methods, for the page (the file is not reachable from a browser)."""
    return EVIDENCE_FILE.read_text(encoding="utf-8") if EVIDENCE_FILE.exists() else "No evidence file in this copy."
