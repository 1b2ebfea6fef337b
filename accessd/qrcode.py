"""QR credentials: generate a random QR text and write it as a PNG or SVG image.

``holders add --qr-generate [--qr-image FILE.png|.svg]`` calls
:func:`generate_text` and :func:`write_image`, so that a holder can be handed
the code to show at the scanner (the intercom's "download QR code when saving").

A generated text is :data:`PREFIX` followed by 128 random bits in unpadded
upper-case base32 (``AQ1-`` + 26 characters of ``A``–``Z``/``2``–``7``): only
characters of QR's alphanumeric mode (a smaller code than byte mode), URL-safe,
and typed by a HID scanner with letters, digits and ``-`` alone.  The image is
a secret like the text: it is written with mode 0600, through a temporary file
renamed into place, so a reader never sees half an image.
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

import segno

from .errors import AccessdError

PREFIX = "AQ1-"
TOKEN_BYTES = 16  # 128 bits
IMAGE_KINDS = {".png": "png", ".svg": "svg"}


class QrImageError(AccessdError, ValueError):
    """A QR image cannot be written; the message names the file."""

    def __init__(self, path: os.PathLike | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"QR image {self.path}: {reason}")


def generate_text(*, token_bytes: Callable[[int], bytes] = secrets.token_bytes, prefix: str = PREFIX) -> str:
    """A new random QR credential text, e.g. ``AQ1-7KQ3…`` (``token_bytes`` is injectable for tests)."""
    raw = token_bytes(TOKEN_BYTES)
    if len(raw) != TOKEN_BYTES:
        raise ValueError(f"token_bytes({TOKEN_BYTES}) returned {len(raw)} bytes")
    return prefix + base64.b32encode(raw).decode("ascii").rstrip("=")


def image_kind(path: os.PathLike | str) -> str:
    """``"png"`` or ``"svg"`` from the file's suffix (any case); anything else is a :class:`QrImageError`."""
    suffix = Path(path).suffix.lower()
    kind = IMAGE_KINDS.get(suffix)
    if kind is None:
        got = f"suffix {Path(path).suffix!r}" if suffix else "no suffix"
        raise QrImageError(path, f"{got}: the image must end in .png or .svg")
    return kind


def make(text: str) -> segno.QRCode:
    """The QR code of ``text`` (error correction level M, at least; never a Micro QR)."""
    if not text:
        raise ValueError("a QR credential needs its text")
    return segno.make(text, error="m", micro=False)


def write_image(text: str, path: os.PathLike | str, *, scale: int = 8, border: int = 4) -> Path:
    """Write ``text`` as a QR code to ``path`` (PNG or SVG by suffix); returns the path.

    ``scale`` is pixels (PNG) or user units (SVG) per module, ``border`` the
    quiet zone in modules (4 is what the standard asks for).
    """
    kind = image_kind(path)
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise QrImageError(path, f"folder {str(directory)!r} does not exist")
    code = make(text)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise QrImageError(path, f"cannot write in {str(directory)!r} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as out:
            code.save(out, kind=kind, scale=scale, border=border)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise QrImageError(path, f"cannot write ({exc.strerror or exc})") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target
