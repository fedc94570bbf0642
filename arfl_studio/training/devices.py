"""Choosing the compute device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found[:0] = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.insert(0, "mps")
    return found


def describe_devices() -> list[str]:
    """Human-readable names, e.g. for the training pane's device box."""
    names = []
    for device in available_devices():
        if device.startswith("cuda"):
            names.append(f"{device} ({torch.cuda.get_device_name(int(device.split(':')[1]))})")
        elif device == "mps":
            names.append("mps (Apple GPU)")
        else:
            names.append("cpu")
    return names


def resolve_device(choice: str = "auto") -> torch.device:
    if choice == "auto":
        return torch.device(available_devices()[0])
    kind = choice.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (or cuda:N), got {choice!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if kind == "mps" and "mps" not in available_devices():
        raise ValueError("device 'mps' was asked for but Apple MPS is not available; use 'auto' or 'cpu'")
    return torch.device(choice)
