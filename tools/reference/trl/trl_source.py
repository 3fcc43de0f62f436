# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Runs pieces of the installed TRL package's own source without importing TRL.

Importing `trl` pulls in transformers, accelerate and datasets, which the tools venv does not
have (scripts/install-deps installs trl with --no-deps on top of Debian's torch 1.13). The
fixture scripts beside this file therefore read TRL's source files from the installed package,
pick the functions, methods, classes or statement ranges they need with `ast`, compile them
unchanged (same file name and line numbers, so a traceback points into TRL) and execute them in a
namespace that holds torch and small stand-ins for the trainer's surroundings (accelerator,
model, metrics). Nothing of TRL is copied into this repository: every run reads the installed
files.

The helpers here:
  trl_version()            the installed distribution's version (importlib.metadata)
  trl_file(rel)            the path of trl/<rel> in the installed package
  load_defs(rel, names, ns)         top-level or Class.method definitions into ns
  load_module_body(rel, ns)         every top-level statement except the imports
  statements(rel, func, first, last) a contiguous statement range of a function's body
  fused_lm_head_namespace()         TRL's fused LM head (add_fused_lm_head and its kernel)
  Model                    a causal-LM stand-in whose backbone returns given logits
"""
import __future__
import ast
import contextlib
import dataclasses
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import types
import warnings
from collections import defaultdict

import numpy
import torch
import torch.nn.functional as F
from packaging.version import Version

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TRL_VERSION_EXPECTED = "1.16.0"


def trl_version():
    return importlib.metadata.version("trl")


def trl_dir():
    spec = importlib.util.find_spec("trl")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("trl is not installed in this Python (scripts/install-deps test)")
    return list(spec.submodule_search_locations)[0]


def trl_file(rel):
    return os.path.join(trl_dir(), rel)


def _parse(rel):
    path = trl_file(rel)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    return path, source, ast.parse(source, filename=path)


# Annotations stay unevaluated (TRL annotates with transformers' types, absent here).
_FLAGS = __future__.annotations.compiler_flag


def _exec(nodes, path, ns):
    module = ast.Module(body=list(nodes), type_ignores=[])
    exec(compile(module, path, "exec", flags=_FLAGS, dont_inherit=True), ns)


def _find(tree, dotted):
    node, parts = tree, dotted.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        found = None
        for child in node.body:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if child.name == part:
                    found = child
            elif isinstance(child, (ast.Assign, ast.AnnAssign)) and last:
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                if any(isinstance(t, ast.Name) and t.id == part for t in targets):
                    found = child
        if found is None:
            raise LookupError(f"{dotted} not found in TRL's {node}")
        node = found
    return node


def load_defs(rel, names, ns):
    """Executes the named definitions of trl/<rel> ("func", "Class", "Class.method", or a
    top-level constant) in ns; a method lands in ns under its own name."""
    path, _, tree = _parse(rel)
    _exec([_find(tree, n) for n in names], path, ns)
    return ns


def load_module_body(rel, ns):
    """Executes every top-level statement of trl/<rel> except its imports (ns provides what
    they would have bound)."""
    path, _, tree = _parse(rel)
    _exec([n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))], path, ns)
    return ns


def statements(rel, func, first, last):
    """The statements of `func`'s body (dotted name) from the first whose source contains
    `first` to the first after it whose source contains `last`, inclusive, compiled as they
    are. Returns a callable that executes them in a given namespace dict."""
    path, source, tree = _parse(rel)
    body = _find(tree, func).body
    start = next(i for i, s in enumerate(body) if first in ast.get_source_segment(source, s))
    end = next(i for i in range(start, len(body)) if last in ast.get_source_segment(source, body[i]))
    module = ast.Module(body=body[start : end + 1], type_ignores=[])
    code = compile(module, path, "exec", flags=_FLAGS, dont_inherit=True)

    def run(ns):
        exec(code, ns)
        return ns

    return run


# --- Stand-ins ------------------------------------------------------------------------------


class _TorchShim(types.ModuleType):
    """torch, plus the two autocast queries TRL's kernel calls with a device type. Torch 1.13
    has torch.is_autocast_enabled() without arguments and no torch.get_autocast_dtype; on the
    CPU they are torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype()."""

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def is_autocast_enabled(device_type=None):
        if device_type in (None, "cuda"):
            return torch.is_autocast_enabled()
        return torch.is_autocast_cpu_enabled()

    @staticmethod
    def get_autocast_dtype(device_type):
        return torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()


class _NotADTensor:
    """torch.distributed.tensor.DTensor stand-in (torch 1.13 has none): nothing is one."""


def _no_gather(*params):
    """maybe_gather_lm_head_ctx stand-in: DeepSpeed ZeRO-3 is off."""
    return contextlib.nullcontext()


class _ModelOutput:
    """transformers.utils.ModelOutput stand-in: a plain base for TRL's output dataclass."""


def _install_kernel_package():
    """The kernel's backward does `from ..trainer.utils import maybe_gather_lm_head_ctx` at
    call time; a stand-in package provides that one name."""
    if "_trl_standin.trainer.utils" in sys.modules:
        return
    for name in ("_trl_standin", "_trl_standin.kernels", "_trl_standin.trainer",
                 "_trl_standin.trainer.utils"):
        mod = types.ModuleType(name)
        mod.__path__ = []
        sys.modules[name] = mod
    sys.modules["_trl_standin.trainer.utils"].maybe_gather_lm_head_ctx = _no_gather


def fused_lm_head_namespace():
    """TRL's add_fused_lm_head (trainer/utils.py) over its ChunkedLogProbFunction
    (kernels/chunked_logprob.py), on the CPU path (no Triton)."""
    _install_kernel_package()
    kernel = {"__name__": "_trl_standin.kernels.chunked_logprob",
              "__package__": "_trl_standin.kernels", "__spec__": None,
              "torch": _TorchShim(), "math": math, "Version": Version,
              "is_triton_available": lambda: False}
    load_module_body("kernels/chunked_logprob.py", kernel)
    transformers_standin = types.SimpleNamespace(__version__="5.0.0")
    ns = {"__name__": "_trl_standin.trainer.utils", "torch": torch, "F": F,
          "functools": functools, "types": types, "nullcontext": contextlib.nullcontext,
          "dataclass": dataclasses.dataclass, "Version": Version,
          "transformers": transformers_standin, "DTensor": _NotADTensor,
          "ModelOutput": _ModelOutput, "maybe_gather_lm_head_ctx": _no_gather,
          "_ChunkedLogProbFunction": kernel["ChunkedLogProbFunction"],
          "_use_triton": kernel["_use_triton"]}
    load_defs("trainer/utils.py", ["_CHUNKED_LOGPROB_CHUNK_SIZE", "FusedCausalLMOutput",
                                   "add_fused_lm_head"], ns)
    return ns


class _Config:
    """A model config with none of the logit scalings or softcaps (plain logits)."""

    model_type = "standin"

    def get_text_config(self):
        return self


class _Head:
    def __init__(self, vocab):
        # Identity LM head: the "hidden states" are the logits themselves, so the head's
        # projection is exact and d loss / d hidden state is d loss / d logits.
        self.weight = torch.eye(vocab, dtype=torch.float32)
        self.bias = None


class Model:
    """A causal LM stand-in: its backbone returns the given (N, T, V) logits as the last hidden
    state and its LM head is the identity, so TRL's fused LM head (added by the caller with
    add_fused_lm_head) computes the log-probs of exactly these logits. `logits` is a leaf that
    collects d loss / d logits."""

    def __init__(self, logits, requires_grad=True, others=()):
        self.logits = logits.detach().clone().to(torch.float32).requires_grad_(requires_grad)
        # Further sequences this model is run on: (input_ids, logits) pairs, picked by ids.
        self.others = [(ids, z.detach().clone().to(torch.float32)) for ids, z in others]
        self.config = _Config()
        self.training = True
        self._head = _Head(self.logits.shape[-1])

    def forward(self, *args, **kwargs):
        raise RuntimeError("the stand-in model only runs with fused_lm_head=True")

    def base_model(self, *args, input_ids=None, **kwargs):
        for ids, z in self.others:
            if input_ids is not None and ids.shape == input_ids.shape and torch.equal(ids, input_ids):
                return types.SimpleNamespace(last_hidden_state=z)
        return types.SimpleNamespace(last_hidden_state=self.logits)

    def get_output_embeddings(self):
        return self._head

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


class Accelerator:
    """One process: gather/reduce/pad are identities."""

    device = torch.device("cpu")
    num_processes = 1
    process_index = 0
    sync_gradients = True

    def gather(self, x):
        return x

    def gather_for_metrics(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x

    def pad_across_processes(self, x, dim=0, pad_index=0):
        return x

    def autocast(self):
        return contextlib.nullcontext()

    def unwrap_model(self, model):
        return model


def new_metrics():
    return {"train": defaultdict(list), "eval": defaultdict(list)}


def last_metrics(metrics, mode="train"):
    """The last value TRL appended under each metric name (NaN as null)."""
    return {k: S(float(v[-1])) for k, v in metrics[mode].items() if v}


def no_gradient_checkpointing(model, kwargs=None):
    """disable_gradient_checkpointing stand-in: the stand-in model has none."""
    return contextlib.nullcontext()


def identity_decorator(fn):
    """profiling_decorator stand-in."""
    return fn


# --- Fixture output ------------------------------------------------------------------------


def T(x):
    """A tensor as fixture JSON: float32 values printed as float64 (exact), NaN as null."""
    x = torch.as_tensor(x).detach()
    if x.dtype in (torch.int32, torch.int64, torch.bool, torch.uint8):
        data = [int(v) for v in x.flatten().tolist()]
    elif x.dtype == torch.float32:
        # The shortest decimal that reads back as the same float32 (keeps the files small).
        data = [None if math.isnan(v) else float(repr(numpy.float32(v)))
                for v in x.flatten().tolist()]
    else:
        data = [None if math.isnan(v) else float(v) for v in x.to(torch.float64).flatten().tolist()]
        if any(v is not None and math.isinf(v) for v in data):
            raise ValueError("fixtures hold finite numbers or NaN (null) only")
    return {"shape": list(x.shape) if x.dim() > 0 else [1], "data": data}


def S(x):
    """A scalar as fixture JSON (NaN as null)."""
    v = float(torch.as_tensor(x).item()) if not isinstance(x, (int, float)) else float(x)
    if math.isnan(v):
        return None
    if math.isinf(v):
        raise ValueError("fixtures hold finite numbers or NaN (null) only")
    return v


def write(family, script, cases, argv=None, batches=None):
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "trl"))
    args = p.parse_args(argv)
    version = trl_version()
    if version != TRL_VERSION_EXPECTED:
        raise SystemExit(f"trl {version} is installed; these fixtures are TRL {TRL_VERSION_EXPECTED}'s "
                         "(scripts/install-deps pins it)")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, family + ".json")
    doc = {"generator": "tools/reference/trl/" + script, "trl": version,
           "torch": torch.__version__, "cases": cases}
    if batches is not None:  # inputs shared by several cases (a case names its batch)
        doc["batches"] = batches
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path} ({len(cases)} cases)")


def quiet():
    """TRL's deprecation-free code still trips torch 1.13's warnings (F.sigmoid); keep the
    output to the one line per fixture."""
    warnings.simplefilter("ignore")
