# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""What the demos (pipeline.py, cai.py) share: running `rlhf` stages printed and timed,
the output folder, and the summary files."""
import json
import os
import shlex
import subprocess
import sys
import time


class Stages:
    """A demo run: `rlhf` commands writing into the folder `out`, timed per stage."""

    def __init__(self, rlhf, out, seed, quick):
        self.rlhf, self.out, self.seed, self.quick = rlhf, out, seed, quick
        self.times = {}
        # Idle OpenMP threads sleep instead of spinning (unless the caller says otherwise):
        # a model this small runs many short parallel regions, and on a machine with other
        # work, spinning threads steal the cores their own team waits for (3x slower).
        self.env = dict(os.environ)
        self.env.setdefault("OMP_WAIT_POLICY", "passive")

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def steps(self, full, quick):
        """`full`, or `quick` under --quick."""
        return quick if self.quick else full

    def run(self, stage, args, capture=False):
        """Runs `rlhf args...` (printed first), timing it under `stage`; exits on failure."""
        cmd = [self.rlhf] + [str(a) for a in args]
        print("\n$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        start = time.monotonic()
        res = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, text=True,
                             env=self.env)
        self.times[stage] = self.times.get(stage, 0.0) + time.monotonic() - start
        if res.returncode != 0:
            sys.exit(f"demo: stage {stage} failed (exit status {res.returncode})")
        return res.stdout

    def write_summary(self, text, data):
        """DIR/summary.md (the table, printed too) and DIR/summary.json (`data`)."""
        with open(self.path("summary.md"), "w") as f:
            f.write(text)
        with open(self.path("summary.json"), "w") as f:
            json.dump(data, f, indent=2)
        print("\n" + text)


def pyplot():
    """matplotlib's pyplot on the file-only backend, or None (with a note) without it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("demo: matplotlib not found: no plots")
        return None
    return plt
