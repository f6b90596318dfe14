"""The receiver of docs/webhooks.md, taken from the document itself: the Python example's code
(all but its last line, which starts the server) is executed and its ``verify`` used. A test
that passes with it shows that what the documentation tells integrators actually verifies."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOC = Path(__file__).parents[2] / "docs" / "webhooks.md"


def documented_receiver() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### A receiver in Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "docs/webhooks.md has no Python receiver example"
    lines = [line for line in code.group(1).splitlines() if not line.startswith("HTTPServer(")]
    namespace: dict[str, Any] = {"__name__": "docs_receiver"}
    exec(compile("\n".join(lines), str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def documented_verify() -> Callable[[str, bytes, str, float], bool]:
    verify: Callable[[str, bytes, str, float], bool] = documented_receiver()["verify"]
    return verify
