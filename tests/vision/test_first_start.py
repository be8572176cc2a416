"""The first `castline up` says how long training will take on this machine before it
trains, then how long it took."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from castline import demo_model
from castline.vision.model import MANIFEST_FILE


def test_training_time_is_said_before_and_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, defective = demo_model.synthetic_photos(tmp_path / "photos", good=12, defective=4)
    few = demo_model.expected_training_s(good, defective)
    more = demo_model.expected_training_s(good * 10, defective)
    assert 0 < few < more  # a measured pass, times the passes over the photos
    demo_model._train_saying_how_long(good, defective, tmp_path / "model")
    said = capsys.readouterr().out
    before = re.search(r"training once, on first start: 12 good and 4 defective photos, "
                       r"about \d+ (s|min) on this machine", said)  # fmt: skip
    after = re.search(r"trained in \d+ (s|min); next starts reuse the model", said)
    assert before and after and before.start() < after.start()
    assert (tmp_path / "model" / MANIFEST_FILE).is_file()
