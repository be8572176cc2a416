"""A golden-envelope breach as people read it, in English and zh-CN.

The line stores a breach as one English line (`domain.envelope.describe`); the part page
recognises its three forms and says them in the page's language (`Translator.breach`),
the stored line kept as it is for the record, the API and anything no pattern knows."""

from __future__ import annotations

import re

NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|nan|inf"
PATTERNS = (
    (
        "outside",
        re.compile(
            rf"(?P<trace>\w+) outside the envelope (?P<at>{NUMBER}) ms from switch-over for "
            rf"(?P<ms>{NUMBER}) ms: (?P<value>{NUMBER}) (?P<unit>[\w/]*), band "
            rf"(?P<low>{NUMBER}) to (?P<high>{NUMBER}) [\w/]*"
        ),
    ),
    (
        "rate",
        re.compile(rf"sampled at (?P<value>{NUMBER}) Hz, the envelope at (?P<low>{NUMBER}) Hz"),
    ),
    ("no_fast_shot", re.compile(r"no fast shot in the curve")),
)


def understand(stored: str) -> tuple[str | None, dict[str, str]]:
    """The breach's form and its figures, or (None, {}) for a text no pattern knows."""
    for code, pattern in PATTERNS:
        if (found := pattern.fullmatch(stored.strip())) is not None:
            return code, found.groupdict()
    return None, {}


EN: dict[str, str] = {
    "breach.outside": (
        "{trace} left the band {at} ms from switch-over for {ms} ms: {value} {unit}, "
        "band {low} to {high} {unit}"
    ),
    "breach.rate": "curve sampled at {value} Hz, the envelope at {low} Hz",
    "breach.no_fast_shot": "no fast shot in the curve",
    "breach.trace.position_mm": "plunger position",
    "breach.trace.velocity_mps": "plunger velocity",
    "breach.trace.pressure_bar": "metal pressure",
    "breach.trace.squeeze_mm": "squeeze pin position",
}

ZH: dict[str, str] = {
    "breach.outside": (
        "{trace}在距切换点 {at} 毫秒处超出包络带，持续 {ms} 毫秒：{value} {unit}，"
        "包络带 {low} 至 {high} {unit}"
    ),
    "breach.rate": "曲线采样频率 {value} Hz，包络线为 {low} Hz",
    "breach.no_fast_shot": "曲线中没有快压射段",
    "breach.trace.position_mm": "压射冲头位置",
    "breach.trace.velocity_mps": "压射速度",
    "breach.trace.pressure_bar": "金属压力",
    "breach.trace.squeeze_mm": "挤压销位置",
}
