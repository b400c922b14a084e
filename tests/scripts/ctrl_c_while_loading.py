"""`monitor` whose process receives a real SIGINT while the command line's modules load: the
moment a Ctrl-C most often lands, as the imports take most of a second."""

from __future__ import annotations

import importlib.abc
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any


class _InterruptOnLoad(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> Any:
        if name == "monitor.cli.logs":
            os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt in the import
        return None


if __name__ == "__main__":
    assert "monitor.cli" not in sys.modules
    sys.meta_path.insert(0, _InterruptOnLoad())
    from monitor.__main__ import main

    main()
