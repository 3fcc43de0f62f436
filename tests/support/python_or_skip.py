# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Runs a Python script when this interpreter has the modules it needs, else exits 77.

Usage: python python_or_skip.py MODULE[,MODULE...] SCRIPT [ARGS...]

Exit status 77 is what ctest reports as "Skipped" for a test with SKIP_RETURN_CODE 77
(tests/CMakeLists.txt); otherwise the script's own exit status.
"""

import importlib
import os
import sys

SKIP = 77


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    for module in filter(None, sys.argv[1].split(",")):
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - any import failure means "not installed"
            print(f"SKIPPED: {sys.executable} cannot import {module}: {e}")
            return SKIP
    script = sys.argv[2]
    os.execv(sys.executable, [sys.executable, script, *sys.argv[3:]])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
