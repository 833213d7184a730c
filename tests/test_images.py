"""Images: every odd format decodes to RGB, bad files raise ImageError, crops stay in bounds."""

import io

import numpy as np
import pytest
from PIL import Image

from conftest import image_bytes, png_bomb_bytes, truncated_jpeg_bytes
from frlib.images import ImageError, crop_box, crop_face, load_image


@pytest.mark.parametrize(
    "fmt,mode",
    [
        ("JPEG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "L"),
        ("PNG", "P"),
        ("TIFF", "CMYK"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("GIF", "P"),
    ],
)
def test_formats_decode_to_rgb(fmt, mode):
    array = load_image(image_bytes(fmt, size=(40, 30), mode=mode))
    assert array.shape == (30, 40, 3) and array.dtype == np.uint8


def test_alpha_is_composited_on_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    buf = io.BytesIO()
    image.save(buf, "PNG")
    assert load_image(buf.getvalue())[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (60, 20), (10, 200, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif)
    assert load_image(buf.getvalue()).shape == (60, 20, 3)


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((250, 0, 0), (0, 0, 250))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    first = load_image(buf.getvalue())
    assert first[0, 0, 0] > 200 and first[0, 0, 2] < 50


@pytest.mark.parametrize(
    "data,message",
    [
        (b"<html>not found</html>", "not an image"),
        (truncated_jpeg_bytes(), "truncated"),
        (png_bomb_bytes(50_000, 50_000), "pixel limit"),
    ],
)
def test_bad_images_raise_clear_errors(data, message):
    with pytest.raises(ImageError, match=message):
        load_image(data, "upload.png")


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_arrays_are_accepted():
    assert load_image(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert load_image(np.ones((5, 6, 4), np.float32)).max() == 255
    with pytest.raises(ImageError):
        load_image(np.zeros((5, 6, 7)))


def test_crop_is_square_padded_at_edges_and_resized():
    image = np.zeros((100, 200, 3), np.uint8)
    x0, y0, x1, y1 = crop_box(image.shape, (0.9, 0.8, 1.0, 1.0), margin=0.5)
    assert x1 - x0 == y1 - y0 == 40 and x1 > 200 and y1 > 100  # square, past the edge
    assert crop_face(image, (0.9, 0.8, 1.0, 1.0), size=32).shape == (32, 32, 3)
    # A face at the very edge is not stretched: the missing side repeats the edge pixels.
    image[:, 199] = 255
    edge = crop_face(image, (0.99, 0.4, 1.0, 0.6), size=20, margin=0.0)
    assert edge[:, 10:].min() == 255 and edge[:, :5].max() == 0
    # The crop is centred on the face: a marked face pixel lands at the crop's centre.
    image[45:55, 95:105] = 255
    crop = crop_face(image, (0.45, 0.4, 0.55, 0.6), size=21, margin=0.2)
    assert crop[10, 10].tolist() == [255, 255, 255]
