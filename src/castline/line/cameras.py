"""Which machines have a camera: a shot of a machine without one is recorded only.

Such a machine's castings are not photographed, so nothing waits for their photo and no
part of theirs is held as QUARANTINE for a photo that was never going to come. The
setting `machines_without_camera` names them (ids or shell-style patterns, `plant/` in
front for one plant only); by default every machine has a camera.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

MAX_KNOWN = 100_000  # machines whose answer is remembered (the setting is matched once each)


class Cameras:
    def __init__(self, without: tuple[str, ...] = ()) -> None:
        self.without = without
        self._known: dict[tuple[str, str], bool] = {}

    def photographed(self, plant: str, machine: str) -> bool:
        """Whether the machine's castings are photographed (their parts wait for photos)."""
        if not self.without:
            return True
        answer = self._known.get((plant, machine))
        if answer is None:
            answer = not any(self._matches(p, plant, machine) for p in self.without)
            if len(self._known) < MAX_KNOWN:
                self._known[(plant, machine)] = answer
        return answer

    @staticmethod
    def _matches(pattern: str, plant: str, machine: str) -> bool:
        if "/" in pattern:
            return fnmatchcase(f"{plant}/{machine}", pattern)
        return fnmatchcase(machine, pattern)
