"""The resident Chronos-2: one copy of the base weights, the active LoRA adapter on top, switched off for
the base forecast (peft's `disable_adapter()`), so both models cost about one model's memory."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from forecaster.frame import monotone
from forecaster.windows import Window, chronos_input

BASE = "base"
FINETUNED = "finetuned"


class BaseModelUnavailable(RuntimeError):
    """The base model could not be loaded; the message is one line saying what to do."""


def unavailable_message(base_model: str, exc: BaseException) -> str:
    """One clear line: what failed and how to fix it on an offline box."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return (
        f"cannot load base model {base_model!r} ({exc.__class__.__name__}: {reason[:200]}); "
        f"on a connected machine run `huggingface-cli download amazon/chronos-2 --local-dir DIR`, "
        f'copy DIR to this box and set forecaster.base_model = "DIR" (env BESS_FORECASTER__BASE_MODEL)'
    )


HUB_PROBE_TIMEOUT_S = 3.0


def hub_problem(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """None when the model hub (huggingface_hub's endpoint, HF_ENDPOINT) accepts a TCP connection, else one
    line saying why not. One probe instead of the hub client's retries with backoff (tens of seconds)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        return f"the model hub {constants.ENDPOINT} is unreachable ({exc.__class__.__name__}: {exc})"
    return None


def cached_snapshot(repo_id: str) -> str | None:
    """The local directory of a hub model already in the hub cache, or None (never touches the network)."""
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def load_pipeline(base_model: str, num_threads: int) -> Any:
    """Load the base Chronos-2 pipeline in fp32 on CPU; BaseModelUnavailable on any failure.

    A hub id is loaded from the hub cache when the hub is unreachable (probed once); when it is not cached
    either, the failure is immediate and said in one line (no retries)."""
    import torch

    torch.set_num_threads(num_threads)
    looks_local = base_model.startswith((".", "/", "~")) or base_model.count("/") > 1
    if looks_local and not Path(base_model).expanduser().is_dir():
        raise BaseModelUnavailable(unavailable_message(base_model, FileNotFoundError("no such directory")))
    source = base_model
    if not looks_local and not Path(base_model).is_dir():
        problem = hub_problem()
        if problem is not None:
            cached = cached_snapshot(base_model)
            if cached is None:
                raise BaseModelUnavailable(unavailable_message(base_model, ConnectionError(problem)))
            source = cached
    try:
        from chronos import BaseChronosPipeline

        pipeline = BaseChronosPipeline.from_pretrained(source, device_map="cpu", torch_dtype=torch.float32)
    except Exception as exc:
        raise BaseModelUnavailable(unavailable_message(base_model, exc)) from exc
    if not hasattr(pipeline, "fit") or not hasattr(pipeline.model, "chronos_config"):
        raise BaseModelUnavailable(f"{base_model!r} is not a Chronos-2 model (got {type(pipeline).__name__})")
    pipeline.model.eval()
    return pipeline


def pipeline_quantiles(pipeline: Any, window: Window, context_steps: int) -> np.ndarray:
    """Quantiles (levels of the checkpoint, H) of one window from a Chronos-2 pipeline, monotone across
    levels. The one predict path of every Chronos-2 forecast (resident models and the gate's candidate).
    The context is also capped at the checkpoint's own context length (1024 for the mini stand-in)."""
    import torch

    longest = int(getattr(pipeline, "model_context_length", context_steps))
    with torch.inference_mode():
        out = pipeline.predict(
            [chronos_input(window)],
            prediction_length=window.horizon_steps,
            context_length=min(context_steps, len(window.target), longest),
            batch_size=1 + len(window.past),
        )
    return monotone(out[0][0].float().numpy())


class ModelSet:
    """Base pipeline + optional adapter; `predict(window, model)` with model in {base, finetuned}."""

    def __init__(self, pipeline: Any, base_model: str) -> None:
        self.pipeline = pipeline
        self.base_model = base_model
        self._base_module = pipeline.model
        self._peft: Any = None
        self._full: Any = None
        self.adapter_version: str | None = None
        self._lock = threading.Lock()

    @property
    def levels(self) -> tuple[float, ...]:
        """Quantile levels of the checkpoint (never hard-coded)."""
        return tuple(float(q) for q in self.pipeline.quantiles)

    @property
    def base_version(self) -> str:
        """model_version tag of the base forecasts."""
        return f"base:{self.base_model}"

    def set_adapter(self, version: str | None, adapter_dir: Path | None) -> None:
        """Activate a version (or none) on the resident base; reloads only when the version changed.

        A LoRA version is applied on top of the resident base weights. A full fine-tune (mode=full: a
        whole checkpoint, no adapter_config.json) is loaded as a second model and costs its own memory."""
        if version == self.adapter_version:
            return
        with self._lock:
            self._clear()
            if version is None or adapter_dir is None:
                return
            if (Path(adapter_dir) / "adapter_config.json").is_file():
                from peft import PeftModel

                self._peft = PeftModel.from_pretrained(self._base_module, str(adapter_dir), is_trainable=False)
                self._peft.eval()
                self.pipeline.model = self._peft
            else:
                from chronos import BaseChronosPipeline

                self._full = BaseChronosPipeline.from_pretrained(str(adapter_dir), device_map="cpu")
                self._full.model.eval()
            self.adapter_version = version

    def _clear(self) -> None:
        if self._peft is not None:
            self._base_module = self._peft.unload()  # strip LoRA layers, base weights untouched
            self._peft = None
            self.pipeline.model = self._base_module
        self._full = None
        self.adapter_version = None

    @contextlib.contextmanager
    def _mode(self, model: str) -> Iterator[Any]:
        if model == FINETUNED:
            if self._full is not None:
                yield self._full
            elif self._peft is not None:
                yield self.pipeline
            else:
                raise RuntimeError("no fine-tuned adapter is active")
        elif self._peft is not None:
            with self._peft.disable_adapter():
                yield self.pipeline
        else:
            yield self.pipeline

    def predict(self, window: Window, model: str, context_steps: int) -> np.ndarray:
        """Quantiles (len(levels), H) of the target for one window (one window per forward)."""
        with self._lock, self._mode(model) as pipeline:
            return pipeline_quantiles(pipeline, window, context_steps)

    def param_counts(self) -> dict[str, int]:
        """Parameter counts: base weights and adapter weights (to check residency cost)."""
        module = self._peft if self._peft is not None else self._base_module
        adapter = sum(p.numel() for n, p in module.named_parameters() if "lora_" in n)
        total = sum(p.numel() for p in module.parameters())
        return {"base": total - adapter, "adapter": adapter}
