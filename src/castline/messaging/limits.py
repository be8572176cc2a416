"""Bounds on what castline accepts from the plant floor (protocol v1).

Every message is checked against these before it is validated field by field, so a
hostile or broken device costs a bounded amount of work and can never put a value into
the record that the database or the code after it cannot hold. `docs/protocol.md` and
`docs/security.md` state the same numbers in words.
"""

from __future__ import annotations

import re

from castline.messaging.topics import Kind

KIB = 1024
MIB = 1024 * KIB

# Whole payload, per kind of message. Images travel as base64 inside JSON (4/3 of the
# image); the embedded broker's own limit is 8 MiB.
MAX_BYTES: dict[Kind, int] = {
    Kind.IMAGE: 8 * MIB,
    Kind.SHOT: 256 * KIB,  # with a shot curve of up to MAX_CURVE samples per trace
    Kind.VERDICT: 64 * KIB,
    Kind.STATE: 16 * KIB,
    Kind.CELL: 16 * KIB,
    Kind.TRUTH: 16 * KIB,
    Kind.DOWNSTREAM: 16 * KIB,
    Kind.AVAILABILITY: 16,  # the bare word online or offline
    Kind.ALARM: 16 * KIB,  # never accepted from a device; bounded like the rest
}

MAX_DEPTH = 32  # JSON nesting: objects and arrays inside each other
MAX_ITEMS = 4096  # entries of any one JSON array or object
MAX_INT = 2**63 - 1  # integers must fit the database's BIGINT
MIN_INT = -(2**63)
MAX_INT_DIGITS = 19  # checked before conversion: Python refuses over 4300 digits itself

MAX_CODE = 64  # die codes and data-matrix codes (as the store's columns)
MAX_DEFECT_TYPE = 40  # as the store's truths.defect_type
MAX_MODEL_VERSION = 80  # as the store's models.version
MAX_NAME = 64  # names of parameters and of unknown fields
MAX_TEXT = 2000  # reasons and causes, for people
MAX_EXTRA_TEXT = 256  # a string value of an unknown field
MAX_PARAMS = 128  # process parameters in one shot
MAX_EXTRA_FIELDS = 64  # unknown fields in one message
MAX_CURVE = 4096  # samples in each trace of a shot curve
MAX_REGIONS = 100  # defect boxes in one verdict
MAX_TIME_TEXT = 40  # an ISO 8601 timestamp with nanoseconds and an offset fits

MAX_SIDE_PX = 8192  # image width and height, read from the header
MAX_PIXELS = 40_000_000
MAX_JPEG_SEGMENTS = 512  # header segments read while looking for the frame size

# Characters no identifier may hold: C0/C1 controls, lone surrogates (not encodable,
# PostgreSQL refuses them), and invisible format characters (zero-width, bidi overrides)
# that would make two codes look the same to a person.
BAD_IN_CODE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)
# Free text for people may hold tabs and line breaks, nothing else of the above.
BAD_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# Any string anywhere in a payload: no NUL (PostgreSQL text cannot hold it) and no lone
# surrogates (JSON escapes can make them; they cannot be written as UTF-8).
BAD_ANYWHERE = re.compile("[\x00\ud800-\udfff]")


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked as cut: for reasons that quote input."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """castline's own free text (a reason that quotes an exception) made fit to publish:
    characters a receiver refuses replaced by U+FFFD, cut to `limit`."""
    return clip(BAD_IN_TEXT.sub("\ufffd", text), limit)


# --- image headers: the size of a picture without decoding it ---------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (PNG_SIGNATURE, "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); C4, C8 and CC
# share the range but are other segments.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def sniff(data: bytes) -> str | None:
    """The content type the bytes start like, or None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes, content_type: str) -> tuple[int, int]:
    """Width and height from the header of a PNG or JPEG; ValueError says what is wrong.

    Only the header is read, so a decompression bomb costs nothing here; the bounds keep
    it from reaching the decoder.
    """
    found = sniff(data)
    if found != content_type:
        seen = f"the bytes are {found}" if found else "the bytes are no known image format"
        raise ValueError(f"content_type says {content_type} but {seen}")
    width, height = _png_size(data) if content_type == "image/png" else _jpeg_size(data)
    if not (0 < width <= MAX_SIDE_PX and 0 < height <= MAX_SIDE_PX):
        raise ValueError(f"image is {width}x{height} px; each side must be 1 to {MAX_SIDE_PX}")
    if width * height > MAX_PIXELS:
        raise ValueError(f"image is {width}x{height} px, over {MAX_PIXELS} pixels")
    return width, height


def _png_size(data: bytes) -> tuple[int, int]:
    # The first chunk must be IHDR (13 bytes): width and height, big-endian.
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("PNG without its IHDR header")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    at = 2  # after the start-of-image marker
    for _ in range(MAX_JPEG_SEGMENTS):
        if at + 4 > len(data):
            break
        if data[at] != 0xFF:
            raise ValueError(f"JPEG header broken at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header came
            raise ValueError("JPEG has no frame header before its image data")
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if length < 2:
            raise ValueError(f"JPEG segment at byte {at} has length {length}")
        if marker in _SOF:
            if at + 9 > len(data) or length < 7:
                break
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        at += 2 + length
    raise ValueError("JPEG ends (or its header runs too long) before the frame header")
