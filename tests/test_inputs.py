"""Image decoding and refusal, without the server (the server-side path is in test_app.py)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from image_corpus import corpus, exif_rotated
from viewer.inputs import ImageRejected, open_image

CASES = corpus()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_case_is_converted_or_refused_clearly(case):
    if case.expect is None:
        loaded = open_image(case.data)
        assert loaded.image.mode == "RGB" and min(loaded.image.size) >= 32
    else:
        with pytest.raises(ImageRejected, match=case.expect):
            open_image(case.data)


@pytest.mark.parametrize("orientation, upright_size", [(1, (300, 200)), (3, (300, 200)), (6, (200, 300)), (8, (200, 300))])
def test_exif_orientation_is_applied(orientation, upright_size):
    case = next(c for c in CASES if c.name == f"exif-orientation-{orientation}") if orientation != 1 else None
    if case is None:
        image = Image.new("RGB", (300, 200))
        import io
        buffer = io.BytesIO()
        image.save(buffer, "JPEG")
        data = buffer.getvalue()
    else:
        data = case.data
    assert open_image(data).image.size == upright_size


@pytest.mark.parametrize("orientation", [0, 9, 300])
def test_an_invalid_exif_orientation_leaves_the_image_as_stored_and_says_so(orientation):
    loaded = open_image(exif_rotated(orientation))
    assert loaded.image.size == (300, 200)
    assert not any("rotated" in note for note in loaded.notes)
    assert any(f"orientation ({orientation}) is not one of the valid 1-8" in note for note in loaded.notes)


def test_transparency_is_shown_on_white():
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)  # fully transparent black
    import io
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, "PNG")
    loaded = open_image(buffer.getvalue())
    assert np.asarray(loaded.image).min() == 255 and "white" in loaded.notes[0]


def test_sixteen_bit_keeps_its_range():
    case = next(c for c in CASES if c.name == "sixteen-bit")
    pixels = np.asarray(open_image(case.data).image)
    assert pixels.min() == 0 and pixels.max() == 255


def test_paths_work_and_missing_files_are_explained(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), "red").save(path)
    assert open_image(path).image.size == (64, 48)
    with pytest.raises(ImageRejected, match="could not be read"):
        open_image(tmp_path / "absent.png")
