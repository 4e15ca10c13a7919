"""Every view of the explorer, declared once: the page, the export and the tests are built from this list.

Adding a view means one line here, its help text in :mod:`viewer.help_texts` (under ``help``), and
its value in the handler named by ``endpoint`` (which returns values by view name).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Form = Literal["tiles", "picture", "photo", "plot", "text"]
TABS: dict[str, str] = {"tour": "Tour", "tokens": "Semantic tokens", "pixels": "Pixels", "stages": "Stages",
                        "compare": "Compare", "explanations": "Explanations", "atlas": "Atlas", "export": "Export"}
# The tabs whose views the browser draws from the analysis's maps (viewer/static/), following the pointer.
LIVE_TABS = ("tokens", "pixels", "stages", "compare")


@dataclass(frozen=True)
class View:
    """One view: ``name`` is also its element id (with dashes) and its exported file's stem.

    ``form``: tiles and pictures are maps drawn over the photo, each with a colour key; a photo is
    the plain image to point at; plots are charts; text is Markdown. ``endpoint``: the server handler
    (and API endpoint) that draws it for the API, the export and headless use (None: the page alone
    shows it). On a live tab (:data:`LIVE_TABS`) the browser draws it from the analysis's maps.
    ``beside``: laid out to the right of the view before it. ``picks_token``: clicking one of its tiles
    picks that token. ``exported``: written by the export (:mod:`viewer.export`) as a headed figure (PNG, SVG,
    PDF; plots also as offline HTML), and downloadable from under the view on the page.
    """

    name: str
    endpoint: str | None
    tab: str
    form: Form
    title: str = ""
    help: str | None = None
    beside: bool = False
    picks_token: bool = False
    exported: bool = False

    @property
    def elem_id(self) -> str:
        return self.name.replace("_", "-")

    @property
    def live(self) -> bool:
        """Drawn in the browser, from the maps the analysis sends once."""
        return self.tab in LIVE_TABS

    @property
    def downloadable(self) -> bool:
        """Drawn in the browser as a picture, tiles, a photo or a plot: links under it download it as a figure
        (Compare's pictures as the token's picture of their image and block)."""
        return self.live and self.form != "text"

    @property
    def keyed(self) -> bool:
        """Maps drawn over the photo carry a colour key."""
        return self.form in ("tiles", "picture")


VIEWS: tuple[View, ...] = (
    View("token_gallery", "token_gallery", "tokens", "tiles", help="token_gallery", picks_token=True, exported=True),
    View("token_image", "token_detail", "tokens", "picture", help="token_detail", beside=True, exported=True),
    View("filmstrip", "token_detail", "tokens", "tiles", "The token through every block", help="filmstrip",
         exported=True),
    View("token_stats", "token_detail", "tokens", "text", beside=True),
    View("pixel_image", "pixel_view", "pixels", "photo", "Move the pointer or a finger over the photo (a click or tap pins the point)",
         exported=True),
    View("pixel_owner", "pixel_view", "pixels", "picture", "The token this pixel reads most", help="pixel_owner",
         beside=True),
    View("pixel_reads", "pixel_view", "pixels", "plot", "What this pixel reads from each token", exported=True),
    View("top_tokens", "pixel_view", "pixels", "tiles", "Its top tokens (click one to open it)", picks_token=True),
    View("ownership", "pixel_view", "pixels", "picture", "Ownership: each pixel coloured by the token it reads most",
         help="ownership", exported=True),
    View("stages", "stages_view", "stages", "tiles", "The last block of each stage", help="stages", exported=True),
    View("class_attention", "stages_view", "stages", "picture", "Class attention", help="class_attention",
         exported=True),
    View("semantic_self", "stages_view", "stages", "plot", "Semantic self-attention", help="semantic_self",
         beside=True, exported=True),
    View("merge_quadrants", "stages_view", "stages", "plot", "Merge blocks: where attention goes",
         help="merge_quadrants", exported=True),
    View("compare_left", None, "compare", "picture", "The first image", help="compare"),
    View("compare_right", None, "compare", "picture", "The second image (or the first at another block)",
         beside=True),
    View("explain_image", "explain", "explanations", "picture"),
    View("explain_text", "explain", "explanations", "text", beside=True),
    View("important_tokens", "explain", "explanations", "tiles", picks_token=True),
    View("importance_plot", "explain", "explanations", "plot", "Token importance"),
    View("atlas_said", "atlas", "atlas", "text"),
    View("atlas_examples", "atlas", "atlas", "tiles",
         "Its dataset examples: its map over each image, the crop holding the most of its mass boxed"),
    View("atlas_lifts", "atlas", "atlas", "plot", "Near home or on objects"),
    View("atlas_classes", "atlas", "atlas", "plot", "The classes it serves", beside=True),
    View("atlas_blocks_said", "atlas", "atlas", "text", "Semantic or positional, block by block"),
    View("atlas_blocks", "atlas", "atlas", "plot", beside=True),
)


def views_of(endpoint: str | None) -> list[View]:
    """The views an endpoint draws, in the order it returns them."""
    return [view for view in VIEWS if view.endpoint == endpoint]


def names_of(endpoint: str) -> list[str]:
    """The names of the views ``endpoint`` draws, in the catalogue's order (the outputs its handler fills)."""
    return [view.name for view in views_of(endpoint)]


def views_on(tab: str) -> list[View]:
    return [view for view in VIEWS if view.tab == tab]


def rows(views: list[View]) -> list[list[View]]:
    """Views grouped into rows: a view marked ``beside`` joins the row of the view before it."""
    grouped: list[list[View]] = []
    for view in views:
        if view.beside and grouped:
            grouped[-1].append(view)
        else:
            grouped.append([view])
    return grouped


def by_name(name: str) -> View:
    for view in VIEWS:
        if view.name == name:
            return view
    raise KeyError(f"no view named {name!r}")
