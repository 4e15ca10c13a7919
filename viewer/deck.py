"""The tour as a lecture deck: one self-contained HTML file (pictures, styles and the stepping script inline; it
works offline) and a PDF of 16:9 slides, one per tour step.

A slide holds the step's title, its picture with the key, and as many of its sentences as fit at projector size
(at least 24 pixels on a 1280x720 slide); every sentence of the step is in its speaker notes. The HTML deck opens
on a title slide naming the image, the model, its weights and what they know; a compared image's tour follows
the first's under a title slide of its own.
"""
from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages

from viewer import figure_files, keys, render
from viewer.analysed import Analysis
from viewer.figure_files import Heading, png_bytes

DECK_SCRIPT = Path(__file__).parent / "static" / "deck.js"
SLIDE_WIDTH, SLIDE_HEIGHT = 12.8, 7.2  # inches: 1280 x 720 pixels at figure_files.DPI
SLIDE_TITLE, SLIDE_BODY, SLIDE_KEY, SLIDE_FOOTER = 26, 18, 13, 12  # points: 36, 25, 18 and 17 pixels at 100 dpi
TITLE_STATEMENT_HEIGHT = 2.6  # inches of the title slide's text column for what the weights know
PICTURE_BOX = (7.0, 4.7)  # inches, the picture's largest width and height on a slide
TEXT_WIDTH = SLIDE_WIDTH - PICTURE_BOX[0] - 3 * figure_files.MARGIN
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(*])")


def plain(text: str) -> str:
    """Markdown emphasis dropped: the words as they are said."""
    return re.sub(r"\*\*(.+?)\*\*|\*(.+?)\*", lambda match: match.group(1) or match.group(2), text)


def sentences(text: str) -> list[str]:
    return [sentence for sentence in SENTENCE.split(plain(text).strip()) if sentence]


def fitting_sentences(text: str, height: float = SLIDE_HEIGHT - 1.6) -> list[str]:
    """The first sentences, as many as fit ``height`` inches of the slide's text column at its body size (at least
    one)."""
    lines_available = int(height / figure_files.line_height(SLIDE_BODY))
    shown: list[str] = []
    for sentence in sentences(text):
        trial = " ".join([*shown, sentence])
        if shown and len(figure_files.wrapped(trial, SLIDE_BODY, TEXT_WIDTH)) > lines_available:
            break
        shown.append(sentence)
    return shown


@dataclass(frozen=True)
class Talk:
    """One image's tour, with what names it."""

    analysis: Analysis
    steps: Sequence[render.TourStep]
    heading: Heading  # the image, model and prediction; its title names the image
    statement: str  # what the weights know, in words


# ----------------------------------------------------------------------------- HTML

DECK_CSS = """
:root {--body-text-color: #14181f; --border-color-primary: #9aa5b1;}
html, body {margin: 0; height: 100%; background: #1d2026; font-family: "DejaVu Sans", Verdana, sans-serif;}
.deck {height: 100%; display: flex; flex-direction: column; align-items: center; justify-content: center;}
.slide {box-sizing: border-box; width: min(100vw, calc((100vh - 48px) * 16 / 9)); aspect-ratio: 16 / 9;
  background: white; color: #14181f; padding: 2.2% 3%; display: grid; grid-template-columns: 56% 1fr;
  grid-template-rows: auto 1fr; gap: 1.2% 3%; font-size: calc(min(100vw, (100vh - 48px) * 16 / 9) / 1280 * 26);
  overflow: hidden; position: relative;}
.slide[hidden] {display: none;}
.slide h1, .slide h2 {grid-column: 1 / -1; margin: 0; font-size: 1.45em; line-height: 1.2;}
.slide figure {margin: 0; min-height: 0; display: flex; flex-direction: column;}
.slide figure img {min-height: 0; max-width: 100%; max-height: 78%; object-fit: contain; align-self: flex-start;}
.slide .colour-key {font-size: 0.7em;}
.slide .text p {margin: 0 0 0.6em; line-height: 1.35;}
.slide .text p.hint {font-size: 0.7em; color: #3d4451;}
.slide.title-slide {grid-template-columns: 40% 1fr;}
.slide .stamp {grid-column: 1 / -1; background: #b42318; color: white; font-weight: bold; padding: 0.3em 0.6em;
  font-size: 0.85em;}
.slide .footer {position: absolute; bottom: 1.2%; left: 3%; right: 3%; font-size: 0.62em; color: #3d4451;}
.slide .footer strong {display: block; color: #b42318;}
.slide aside.notes {display: none;}
.deck-notes-shown .slide aside.notes {display: block; position: absolute; inset: auto 0 0 0; max-height: 45%;
  overflow: auto; background: #fffbe6; border-top: 2px solid #d9a400; padding: 0.5em 1em; font-size: 0.7em;}
.deck-bar {display: flex; gap: 12px; align-items: center; justify-content: center; height: 40px; color: #eee;
  font-size: 16px; order: 2;}
.deck-button {font-size: 16px; padding: 4px 12px;}
""" + keys.KEY_CSS


def image_tag(image, alt: str) -> str:
    return (f'<img src="data:image/png;base64,{base64.b64encode(png_bytes(image)).decode("ascii")}" '
            f'alt="{html.escape(alt)}">')


def strong_html(text: str) -> str:
    """Markdown bold and italics as HTML, the rest escaped."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"\*(.+?)\*", r"<em>\1</em>", escaped)


def stamp_html(heading: Heading) -> str:
    return f'<div class="stamp">{html.escape(heading.stamp)}</div>' if heading.stamp else ""


def title_slide_html(talk: Talk, deck_title: str) -> str:
    return (f'<section class="slide title-slide" aria-label="title slide"><h1>{html.escape(deck_title)}</h1>'
            f'{stamp_html(talk.heading)}<figure>{image_tag(talk.analysis.display, talk.heading.title)}</figure>'
            f'<div class="text"><p>{html.escape(talk.heading.context)}</p>'
            f'<p>{html.escape(" ".join(fitting_sentences(talk.statement, TITLE_STATEMENT_HEIGHT)))}</p>'
            f'<p class="hint">{len(talk.steps)} steps: ← → or a click to step, F for full screen, N for the speaker '
            f'notes.</p></div><aside class="notes">{html.escape(" ".join(sentences(talk.statement)))}</aside></section>')


def step_slide_html(talk: Talk, number: int, step: render.TourStep) -> str:
    picture = step.picture
    key = keys.key_html(picture.key) if picture.key is not None else ""
    shown = "".join(f"<p>{html.escape(sentence)}</p>" for sentence in fitting_sentences(step.text))
    notes = " ".join(sentences(step.text))
    return (f'<section class="slide" aria-label="step {number}"><h2>{number}. {html.escape(step.title)}</h2>'
            f'<figure>{image_tag(picture.image, step.title)}{key}</figure><div class="text">{shown}</div>'
            f'<div class="footer">{f"<strong>{html.escape(talk.heading.stamp)}</strong>" if talk.heading.stamp else ""}'
            f'{html.escape(talk.heading.context)}</div>'
            f'<aside class="notes">{html.escape(notes)}</aside></section>')


def deck_html(talks: Sequence[Talk]) -> str:
    """The whole deck, one file, nothing fetched: each talk's title slide and steps."""
    slides = []
    for index, talk in enumerate(talks):
        deck_title = "Dual-ViT, step by step" if index == 0 else "The compared image"
        slides.append(title_slide_html(talk, deck_title))
        slides += [step_slide_html(talk, number, step) for number, step in enumerate(talk.steps, start=1)]
    script = DECK_SCRIPT.read_text(encoding="utf-8")
    title = html.escape(f"Dual-ViT, step by step: {talks[0].heading.title}")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
            f'<style>{DECK_CSS}</style></head><body><main class="deck">{"".join(slides)}</main>'
            f'<script type="module">{script}\n'
            f"present(document.querySelector('.deck'), [...document.querySelectorAll('.slide')], "
            f"{{clickSteps: true}});</script></body></html>")


# ----------------------------------------------------------------------------- PDF

def stacked(figure, blocks: Sequence[figure_files.Block], top: float, gap: float = 0.06) -> float:
    """Draw ``blocks`` one under another from ``top``; returns where the last one ends."""
    for size, draw in blocks:
        draw(figure, top)
        top -= size + gap
    return top


def slide_figure(talk: Talk, number: int, step: render.TourStep):
    """One 16:9 slide: title, the picture and its key on the left, the sentences that fit on the right, and along
    the bottom the image, model and prediction, with the caution stamp."""
    figure = figure_files.Figure(figsize=(SLIDE_WIDTH, SLIDE_HEIGHT), dpi=figure_files.DPI, facecolor="white")
    figure_files.FigureCanvasAgg(figure)
    margin = figure_files.MARGIN
    top = stacked(figure, [figure_files.text_block(f"{number}. {step.title}", SLIDE_TITLE, SLIDE_WIDTH - 2 * margin,
                                                   margin, weight="bold")], SLIDE_HEIGHT - margin) - 0.1
    footer = [figure_files.text_block(talk.heading.context, SLIDE_FOOTER, SLIDE_WIDTH - 2 * margin, margin,
                                      colour="#3d4451")]
    if talk.heading.stamp:
        footer.insert(0, figure_files.text_block(talk.heading.stamp, SLIDE_FOOTER, SLIDE_WIDTH - 2 * margin, margin,
                                                 weight="bold", colour=figure_files.STAMP_COLOUR))
    footer_top = 0.15 + sum(size + 0.06 for size, _ in footer)
    stacked(figure, footer, footer_top)
    picture = step.picture
    key = figure_files.key_blocks(picture.key, PICTURE_BOX[0], margin, SLIDE_KEY)
    room = top - footer_top - 0.15 - sum(size + 0.06 for size, _ in key)  # the picture takes what the key leaves
    image = picture.marks.plain if picture.marks is not None else picture.image
    width = min(PICTURE_BOX[0], room * image.shape[1] / image.shape[0])
    stacked(figure, [figure_files.picture_block(picture.image, width, picture.marks, talk.analysis, left=margin)] + key,
            top)
    text_left = margin * 2 + PICTURE_BOX[0]
    stacked(figure, [figure_files.text_block(" ".join(fitting_sentences(step.text, top - footer_top)), SLIDE_BODY,
                                             TEXT_WIDTH, text_left)], top)
    return figure


def deck_pdf(talks: Sequence[Talk]) -> bytes:
    """One 16:9 page per tour step, each talk's steps in turn."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(figure_files.TEXT_AS_TEXT), PdfPages(buffer, metadata={
            "Title": f"Dual-ViT, step by step: {talks[0].heading.title}", "Creator": "Dual-ViT Explorer"}) as pages:
        for talk in talks:
            for number, step in enumerate(talk.steps, start=1):
                pages.savefig(slide_figure(talk, number, step))
    return buffer.getvalue()
