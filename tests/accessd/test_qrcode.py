"""QR credentials: random texts, and PNG/SVG images that a real decoder (zxing-cpp) reads back.

The PNG is decoded as written.  The SVG is parsed as XML and its path is drawn
module by module (segno writes one path of horizontal strokes; any other
command fails the test), and that raster is decoded by the same decoder.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from accessd.protocols.qr import US_LAYOUT, HidDecoder, QrText
from PIL import Image

from accessd import qrcode


def decode(image):
    results = zxingcpp.read_barcodes(image)
    return [(r.format, r.text) for r in results]


def test_generated_text_shape_and_entropy():
    text = qrcode.generate_text()
    assert re.fullmatch(r"AQ1-[A-Z2-7]{26}", text)
    raw = base64.b32decode(text[4:] + "======")
    assert len(raw) == 16  # 128 bits
    assert qrcode.generate_text() != text


def test_generated_text_uses_the_injected_randomness():
    assert qrcode.generate_text(token_bytes=lambda n: bytes(n)) == "AQ1-" + "A" * 26
    assert qrcode.generate_text(token_bytes=lambda n: b"\xff" * n, prefix="X-") == "X-" + "7" * 25 + "4"  # 128 = 25 * 5 + 3 bits (11100)
    with pytest.raises(ValueError, match="returned 3 bytes"):
        qrcode.generate_text(token_bytes=lambda n: b"abc")


def test_generated_text_is_alphanumeric_mode():
    code = qrcode.make(qrcode.generate_text())
    assert code.mode == "alphanumeric"
    assert not code.is_micro


@pytest.mark.parametrize("name", ["holder.png", "HOLDER.PNG"])
def test_png_decodes_back_to_its_text(tmp_path, name):
    text = qrcode.generate_text()
    path = qrcode.write_image(text, tmp_path / name)
    assert path == tmp_path / name
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert decode(image) == [(zxingcpp.BarcodeFormat.QRCode, text)]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # a credential: for its holder only
    assert sorted(os.listdir(tmp_path)) == [name]  # no temporary file left


def test_png_of_any_text(tmp_path):
    text = "https://door.example/q?t=Grüße&x=1"
    with Image.open(qrcode.write_image(text, tmp_path / "x.png")) as image:
        assert decode(image) == [(zxingcpp.BarcodeFormat.QRCode, text)]


def rasterize_segno_svg(path, pixels_per_module=4):
    """Draw the SVG's strokes as QR modules; returns (image, modules per side)."""
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    [p] = root.iter(f"{ns}path")
    scale = float(re.fullmatch(r"scale\(([\d.]+)\)", p.get("transform", "scale(1)")).group(1))
    size = float(root.get("width")) / scale
    assert size == float(root.get("height")) / scale and size.is_integer()
    n = int(size)
    dark = [[False] * n for _ in range(n)]
    x = y = 0.0
    tokens = re.findall(r"[A-Za-z]|-?\d*\.?\d+", p.get("d"))
    i = 0
    while i < len(tokens):
        cmd = tokens[i]
        if cmd in "Mm":
            dx, dy = float(tokens[i + 1]), float(tokens[i + 2])
            x, y = (dx, dy) if cmd == "M" else (x + dx, y + dy)
            i += 3
        elif cmd in "Hh":
            end = float(tokens[i + 1]) + (x if cmd == "h" else 0)
            row = int(y - 0.5)  # a stroke of width 1 centred on y covers the module row below y - 0.5
            assert y - 0.5 == row
            for col in range(int(x), int(end)):
                dark[row][col] = True
            x = end
            i += 2
        else:
            raise AssertionError(f"unexpected SVG path command {cmd!r}")
    image = Image.new("L", (n * pixels_per_module, n * pixels_per_module), 255)
    for r, cells in enumerate(dark):
        for c, on in enumerate(cells):
            if on:
                image.paste(0, (c * pixels_per_module, r * pixels_per_module,
                                (c + 1) * pixels_per_module, (r + 1) * pixels_per_module))
    return image, n, dark


def test_svg_decodes_back_to_its_text(tmp_path):
    text = qrcode.generate_text()
    path = qrcode.write_image(text, tmp_path / "holder.svg", border=4)
    image, n, dark = rasterize_segno_svg(path)
    code = qrcode.make(text)
    width, _ = code.symbol_size(border=0)
    assert n == width + 2 * 4  # module count: the symbol plus the quiet zone
    assert not any(dark[0]) and not any(row[0] for row in dark)  # the quiet zone is empty
    assert decode(image) == [(zxingcpp.BarcodeFormat.QRCode, text)]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_svg_and_png_carry_the_same_modules(tmp_path):
    text = qrcode.generate_text()
    qrcode.write_image(text, tmp_path / "a.png", scale=1, border=4)
    _, n, dark = rasterize_segno_svg(qrcode.write_image(text, tmp_path / "a.svg", border=4))
    with Image.open(tmp_path / "a.png") as png:
        pixels = png.convert("L")
        assert pixels.size == (n, n)
        assert [[pixels.getpixel((c, r)) < 128 for c in range(n)] for r in range(n)] == dark


@pytest.mark.parametrize(("name", "why"), [
    ("holder.jpg", "suffix '.jpg': the image must end in .png or .svg"),
    ("holder", "no suffix: the image must end in .png or .svg"),
    ("holder.png.txt", "suffix '.txt': the image must end in .png or .svg"),
])
def test_other_suffixes_are_refused_naming_the_file(tmp_path, name, why):
    target = tmp_path / name
    with pytest.raises(qrcode.QrImageError) as info:
        qrcode.write_image("AQ1-X", target)
    assert str(info.value) == f"QR image {target}: {why}"
    assert info.value.path == str(target)
    assert isinstance(info.value, ValueError)
    assert os.listdir(tmp_path) == []


def test_missing_folder_and_directory_target_are_named(tmp_path):
    missing = tmp_path / "nope" / "x.png"
    with pytest.raises(qrcode.QrImageError, match=f"QR image {re.escape(str(missing))}: folder .* does not exist"):
        qrcode.write_image("AQ1-X", missing)
    (tmp_path / "d.png").mkdir()
    with pytest.raises(qrcode.QrImageError, match=r"d\.png: cannot write"):
        qrcode.write_image("AQ1-X", tmp_path / "d.png")
    assert sorted(os.listdir(tmp_path)) == ["d.png"]  # the temporary file was removed


def test_an_existing_image_is_replaced(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"old")
    qrcode.write_image("AQ1-NEW", path)
    with Image.open(path) as image:
        assert decode(image) == [(zxingcpp.BarcodeFormat.QRCode, "AQ1-NEW")]


def test_empty_text_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs its text"):
        qrcode.write_image("", tmp_path / "x.png")


def test_a_generated_text_survives_a_hid_scanner():
    """Every character of a generated text is typed by a US-layout scanner and decoded back."""
    keys = {plain: code for code, (_, plain, _) in sorted(US_LAYOUT.items(), reverse=True)}
    keys.update({shift: code for code, (_, plain, shift) in sorted(US_LAYOUT.items(), reverse=True)
                 if shift != plain and shift.isupper()})
    text = qrcode.generate_text()
    events = []
    for ch in text:
        if ch.isupper():
            events += [(42, 1), (keys[ch], 1), (keys[ch], 0), (42, 0)]
        else:
            events += [(keys[ch], 1), (keys[ch], 0)]
    assert HidDecoder().feed_events([*events, (28, 1), (28, 0)]) == [QrText(text=text)]
