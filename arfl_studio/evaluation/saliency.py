"""Saliency and perturbation maps, and overlays blended pixel by pixel.

``gradient`` is the paper's map (Section 4, Figure 5): the gradient of the loss with
respect to the input, its magnitude (max over channels) scaled to [0, 1]. For one
logit z and BCE loss, dL/dx = (sigmoid(z) - y) * dz/dx: the scalar factor cancels in
the [0, 1] scaling, so we compute dz/dx, which (unlike the loss gradient) does not
underflow to an all-zero map for confident predictions. ``smoothgrad`` (Smilkov et
al. 2017) and ``integrated-gradients`` (Sundararajan et al. 2017, black baseline)
come from captum, applied to the signed logit ``(2y - 1) * z`` of the target class.

Overlays: matplotlib colormaps (Agg, no Qt), alpha-blended into uint8 RGB here; the
perturbation delta uses a diverging map centred at 0, amplified so the largest |delta|
fills the map.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from arfl_studio.training.attacks import attack_mode

METHODS = ("gradient", "smoothgrad", "integrated-gradients")


class _SignedLogit(nn.Module):
    """(2y - 1) * z: the score of the target class for a single-logit model."""

    def __init__(self, model: nn.Module, sign: float):
        super().__init__()
        self.model, self.sign = model, sign

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sign * self.model(x).float().reshape(len(x))


def explained_class(model: nn.Module, image: torch.Tensor, target: int | float | None = None, threshold: float = 0.0) -> int:
    """The class (1 malignant, 0 benign) a map explains: ``target`` if given, else the model's
    prediction at its decision ``threshold`` (a logit: the one stored with the model)."""
    if target is not None:
        return int(float(target) > 0.5)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = image.detach().float().to(device)
    with attack_mode(model), torch.no_grad():
        return int(float(model(x if x.dim() == 4 else x[None]).float().reshape(-1)[0]) > threshold)


def scale01(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= 0:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def attribution(
    model: nn.Module,
    image: torch.Tensor,
    method: str = "gradient",
    target: int | float | None = None,
    *,
    samples: int = 16,
    noise: float = 0.1,
    ig_steps: int = 32,
    seed: int = 0,
    threshold: float = 0.0,
) -> np.ndarray:
    """The raw attribution (C, H, W) for one image (C, H, W) in [0, 1], of class ``target``
    (None: the model's prediction at its decision ``threshold``, a logit)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if image.dim() != 3:
        raise ValueError(f"image must be (C, H, W), got shape {tuple(image.shape)}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = image.detach().float().to(device)[None]
    with attack_mode(model), torch.enable_grad():
        forward = _SignedLogit(model, 1.0 if explained_class(model, x, target, threshold) else -1.0)
        if method == "gradient":
            x = x.requires_grad_(True)
            (grad,) = torch.autograd.grad(forward(x).sum(), x)
            return grad[0].detach().cpu().numpy()
        from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

        torch.manual_seed(seed)
        if method == "smoothgrad":
            # noise as a fraction of the input range, as in Smilkov et al.
            stdev = noise * float(x.max() - x.min() or 1.0)
            attr = NoiseTunnel(Saliency(forward)).attribute(
                x, nt_type="smoothgrad", nt_samples=samples, nt_samples_batch_size=samples, stdevs=stdev, abs=True
            )
        else:
            attr = IntegratedGradients(forward).attribute(x, baselines=torch.zeros_like(x), n_steps=ig_steps, internal_batch_size=ig_steps)
    return attr[0].detach().cpu().numpy()


def saliency_map(
    model: nn.Module,
    image: torch.Tensor,
    method: str = "gradient",
    target: int | float | None = None,
    **kwargs,
) -> np.ndarray:
    """(H, W) float32 in [0, 1]: |attribution|, max over channels, min-max scaled.

    ``target`` is the label (0/1) whose loss is differentiated; None uses the model's
    prediction at ``threshold`` (pass the model's stored decision threshold; see
    :func:`explained_class`). Extra keywords go to :func:`attribution` (samples, noise,
    ig_steps, seed, threshold).
    """
    attr = attribution(model, image, method, target, **kwargs)
    return scale01(np.abs(attr).max(axis=0))


def perturbation(
    model: nn.Module,
    image: torch.Tensor,
    target: int | float,
    attack: str = "pgd",
    eps: float = 0.01,
    **attack_kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """(delta (H, W), adversarial image (H, W)) for one image; channel means (images are grey)."""
    from arfl_studio.evaluation.attacks import run_attack

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = image.detach().float().to(device)[None]
    adv = run_attack(model, x, torch.tensor([float(target)], device=device), attack, eps, **attack_kwargs)
    delta = (adv - x)[0].mean(dim=0).cpu().numpy().astype(np.float32)
    return delta, adv[0].mean(dim=0).cpu().numpy().astype(np.float32)


def _colormap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def colorize(values01: np.ndarray, colormap: str = "inferno") -> np.ndarray:
    """(H, W) in [0, 1] -> float RGB (H, W, 3) in [0, 1]."""
    return _colormap(colormap)(np.clip(values01, 0, 1))[..., :3]


def _gray(gray: np.ndarray) -> np.ndarray:
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim == 3:  # (C, H, W) -> mean over channels
        gray = gray.mean(axis=0)
    return np.clip(gray, 0, 1)


def blend_overlay(gray: np.ndarray, heat: np.ndarray, colormap: str = "inferno", alpha: float = 0.5) -> np.ndarray:
    """uint8 RGB (H, W, 3): (1 - alpha) * grey image + alpha * colormap(heat)."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    gray = _gray(gray)
    if gray.shape != np.shape(heat):
        raise ValueError(f"image {gray.shape} and map {np.shape(heat)} differ in size")
    rgb = (1 - alpha) * gray[..., None] + alpha * colorize(np.asarray(heat, dtype=np.float32), colormap)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def delta_display(delta: np.ndarray) -> tuple[np.ndarray, float]:
    """delta -> values in [0, 1] centred at 0.5 (0 change), and the amplification used."""
    peak = float(np.abs(delta).max())
    gain = 0.5 / peak if peak > 0 else 1.0
    return np.clip(0.5 + gain * np.asarray(delta, dtype=np.float32), 0, 1), gain


def perturbation_overlay(gray: np.ndarray, delta: np.ndarray, colormap: str = "RdBu_r", alpha: float = 0.6) -> tuple[np.ndarray, float]:
    """uint8 RGB with delta on a diverging map centred at 0 (amplified); returns (rgb, amplification)."""
    shown, gain = delta_display(delta)
    return blend_overlay(gray, shown, colormap, alpha), gain


IMAGE_FORMATS = (".png", ".tif", ".tiff", ".svg", ".pdf")
FIGURE_FORMATS = (".png", ".svg", ".pdf")


def output_format(path, formats: Sequence[str] = IMAGE_FORMATS) -> str:
    """The format ``path``'s suffix names ("png", "svg", ...); an unknown suffix raises ValueError,
    so that no file holds bytes of another format than its name says."""
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix not in formats:
        raise ValueError(
            f"{path}: cannot write {suffix or 'a name without a suffix'!r}; the suffix chooses the format, one of {', '.join(formats)}"
        )
    return "tiff" if suffix == ".tif" else suffix[1:]


def save_png(path, rgb: np.ndarray) -> None:
    """Write a uint8 RGB (or grey) array atomically, in the format ``path``'s suffix names
    (:data:`IMAGE_FORMATS`; the name is historical: PNG is the usual one)."""
    import io

    from matplotlib import image as mpimg  # PIL underneath; no pyplot, no GUI backend

    from arfl_studio import atomic

    fmt = output_format(path)
    buf = io.BytesIO()
    mpimg.imsave(buf, rgb, format=fmt, cmap="gray" if np.ndim(rgb) == 2 else None)
    atomic.write_bytes(path, buf.getvalue())


def compare_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    path,
    colormap: str = "inferno",
    colorbar_label: str = "scaled gradient",
    title: str | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> None:
    """Side-by-side panels (title, already-blended uint8 RGB) and one colour bar (Figure 5), as PNG,
    SVG or PDF by ``path``'s suffix."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    from arfl_studio import atomic

    fmt = output_format(path, FIGURE_FORMATS)
    n = len(panels)
    fig = Figure(figsize=(3.2 * n + 0.9, 3.8), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, rgb) in zip(axes, panels):
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    mappable = ScalarMappable(norm=Normalize(vmin, vmax), cmap=_colormap(colormap))
    fig.colorbar(mappable, ax=list(axes), fraction=0.046 / max(n / 2, 1), pad=0.02, label=colorbar_label)
    if title:
        fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, bbox_inches="tight")
    atomic.write_bytes(path, buf.getvalue())


def overlay_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    path,
    *,
    colormap="inferno",
    levels: tuple[float, float] = (0.0, 1.0),
    colorbar_label: str = "",
    caption: str = "",
    aspect: float = 1.0,
    positions: Sequence[tuple[int, int]] | None = None,
) -> None:
    """Blended panels (title, uint8 RGB) at their full pixel size, one colour bar and a caption.

    Written to exactly ``path`` as PNG, SVG or PDF (by its suffix; Agg, no GUI backend).
    ``colormap``: a matplotlib name or an (N, 3) RGB table (the viewer's own map).
    ``aspect``: height of a pixel over its width (row / column spacing). ``positions``:
    (row, column) of each panel in a grid, as on screen (default: one row); a caption
    longer than the figure is wrapped, never cut.
    """
    import io

    from arfl_studio import atomic

    fmt = output_format(path, FIGURE_FORMATS)
    fig = overlay_layout(
        panels, colormap=colormap, levels=levels, colorbar_label=colorbar_label, caption=caption, aspect=aspect, positions=positions
    )
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=fig.dpi)
    atomic.write_bytes(path, buf.getvalue())


def overlay_layout(
    panels: Sequence[tuple[str, np.ndarray]],
    *,
    colormap="inferno",
    levels: tuple[float, float] = (0.0, 1.0),
    colorbar_label: str = "",
    caption: str = "",
    aspect: float = 1.0,
    positions: Sequence[tuple[int, int]] | None = None,
):
    """The matplotlib Figure that :func:`overlay_figure` writes (same arguments, no path)."""
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("no image to export")
    positions = list(positions) if positions is not None else [(0, i) for i in range(len(panels))]
    used_rows, used_cols = sorted({r for r, _ in positions}), sorted({c for _, c in positions})
    positions = [(used_rows.index(r), used_cols.index(c)) for r, c in positions]  # no empty row or column
    cmap = _colormap(colormap) if isinstance(colormap, str) else ListedColormap(np.asarray(colormap)[:, :3])
    dpi = 100.0
    n_rows, n_cols = max(r for r, _ in positions) + 1, max(c for _, c in positions) + 1
    row_h = [max([rgb.shape[0] * aspect for (_, rgb), (r, _) in zip(panels, positions) if r == k] or [0.0]) for k in range(n_rows)]
    col_w = [max([float(rgb.shape[1]) for (_, rgb), (_, c) in zip(panels, positions) if c == k] or [0.0]) for k in range(n_cols)]
    font_pt = max(9.0, max(row_h) / 90)
    font_px = font_pt * dpi / 72
    gap, title_h = font_px, 2.4 * font_px
    bar_w, bar_area = 1.4 * font_px, 9 * font_px
    total_w = sum(col_w) + gap * (n_cols + 1) + bar_area
    lines = textwrap.wrap(caption, width=max(20, int((total_w - 2 * gap) / (0.6 * font_px)))) if caption else []
    caption_h = 1.5 * font_px * max(1, len(lines)) + font_px
    grid_h = sum(row_h) + title_h * n_rows
    total_h = grid_h + caption_h + gap
    fig = Figure(figsize=(total_w / dpi, total_h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    for (title, rgb), (r, c) in zip(panels, positions):
        h, w = rgb.shape[0] * aspect, rgb.shape[1]
        x = gap + sum(col_w[:c]) + gap * c + (col_w[c] - w) / 2
        top = gap + sum(row_h[:r]) + title_h * (r + 1)  # from the figure's top edge
        ax = fig.add_axes((x / total_w, 1 - (top + h) / total_h, w / total_w, h / total_h))
        ax.imshow(rgb, interpolation="none", aspect="auto")
        ax.set_axis_off()
        ax.text(0.5, 1.0, title, transform=ax.transAxes, ha="center", va="bottom", fontsize=font_pt)
    x = total_w - bar_area + gap
    cax = fig.add_axes((x / total_w, 1 - (gap + title_h + 0.9 * grid_h) / total_h, bar_w / total_w, 0.8 * grid_h / total_h))
    bar = fig.colorbar(ScalarMappable(norm=Normalize(*levels), cmap=cmap), cax=cax)
    bar.set_label(colorbar_label, fontsize=font_pt)
    bar.ax.tick_params(labelsize=font_pt * 0.9)
    fig.text(gap / total_w, 0.5 * font_px / total_h, "\n".join(lines), ha="left", va="bottom", fontsize=font_pt, linespacing=1.3)
    return fig
