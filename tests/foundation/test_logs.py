"""Log lines say the zone of their time, plain or JSON."""

from __future__ import annotations

import json
import logging
import re

import pytest

from castline import logs


@pytest.mark.parametrize("json_lines", [False, True])
def test_every_log_line_says_the_zone_of_its_time(
    json_lines: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.setup(json_lines=json_lines)
    try:
        logging.getLogger("castline.test").info("a shot was recorded")
    finally:
        root.handlers[:], root.level = handlers, level
    line = capsys.readouterr().err.strip()
    if json_lines:
        assert json.loads(line)["ts"].endswith("+00:00")
    else:
        assert re.match(r"\d\d:\d\d:\d\d [+-]\d{4} INFO    castline.test: a shot", line), line
