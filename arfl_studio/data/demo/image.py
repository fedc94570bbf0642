"""The demo's image model: one synthetic breast view, chest wall at column 0.

All vectorised numpy, float32 intensity about [0, 1], tissue bright:
- outline: a half ellipse from the chest wall (MLO views hang lower, tilt, and add
  the pectoral muscle), with a nipple in profile at the tip;
- thickness: full in the compressed middle, falling off gradually towards the skin
  line over a periphery band, as the uncompressed breast edge does; the image there
  fades into the background instead of ending at a sharp edge;
- parenchyma: 1/f^beta noise (beta ~ 3, the power-law spectrum measured on real
  mammograms) soft-thresholded into fibroglandular density near the chest wall,
  inside a dim subcutaneous fatty rim that has no glandular tissue;
- findings from ``demo_findings``; a little quantum noise everywhere.

``render_view_with_mask`` also returns the breast's true outline, so tests can
measure how much of the breast a crop keeps.
"""

from __future__ import annotations

import numpy as np

from arfl_studio.data.demo.findings import draw_findings


def power_law_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Zero-mean, unit-std 2-D noise with power spectrum ~ 1/f^beta."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amplitude = f ** (-beta / 2.0)
    amplitude[0, 0] = 0.0
    spectrum = (rng.standard_normal(amplitude.shape) + 1j * rng.standard_normal(amplitude.shape)) * amplitude
    field = np.fft.irfft2(spectrum, s=shape).astype(np.float32)
    field -= field.mean()
    field /= field.std() + 1e-8
    return field


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def _outline(h: int, w: int, view: str, shape_params: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, inside, pectoral): normalised radius (1 at the skin line), the true breast
    mask (nipple included) and the pectoral muscle's soft mask."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = shape_params["depth"] * w  # extent from the chest wall
    b = shape_params["height"] * h / 2  # half height at the chest wall
    cy = shape_params["center"] * h
    tilt = 0.0
    if view == "MLO":
        b *= 1.12
        cy += 0.06 * h
        tilt = 0.18  # the breast hangs: outline centre drifts down with depth
    r = np.sqrt((xx / a) ** 2 + ((yy - (cy + tilt * xx)) / b) ** 2)
    # nipple in profile: a small bump on the tip, part of the breast
    nipple = max(1.5, 0.022 * min(h, w))
    tip_y, tip_x = cy + tilt * a, a
    r_nipple = np.sqrt((xx - tip_x) ** 2 + (yy - tip_y) ** 2) / nipple
    r = np.minimum(r, 1.0 + (r_nipple - 1.0) * nipple / a)
    inside = r < 1.0
    pectoral = np.zeros((h, w), np.float32)
    if view == "MLO":
        top = shape_params["pectoral"] * w
        line = top * (1.0 - yy / (0.55 * h))  # pectoral edge: from (0, top) down to (0.55h, 0)
        pectoral = _sigmoid((line - xx) / max(0.8, 0.01 * max(h, w))) * inside
    return r, inside, pectoral.astype(np.float32)


_DETAIL_SIZE = 1024  # larger views are rendered at this size and resampled up


def _render(
    rng: np.random.Generator, size: tuple[int, int], view: str, shape_params: dict, findings: list[dict]
) -> tuple[np.ndarray, np.ndarray]:
    """(noise-free intensity, normalised radius r) at ``size``."""
    h, w = size
    r, inside, pectoral = _outline(h, w, view, shape_params)
    periphery = shape_params.get("periphery", 0.06)  # width of the thickness fall-off, in r
    rim = shape_params.get("rim", 0.12)  # depth of the subcutaneous fat layer, in r
    fat = shape_params.get("fat", 0.14)  # intensity of pure fat at full thickness
    thickness = np.sqrt(np.clip((1.0 - r) / periphery, 0.0, 1.0))
    glandular = _sigmoid((1.0 - rim - r) / 0.03)  # 0 in the fatty rim, 1 inside it
    texture = power_law_noise(rng, (h, w), beta=shape_params["beta"])
    fine = power_law_noise(rng, (h, w), beta=1.6)
    xx = np.arange(w, dtype=np.float32)[None, :]
    # fibroglandular tissue: denser near the chest wall, soft-thresholded noise
    gradient = 1.0 - xx / (shape_params["depth"] * w)
    density = _sigmoid((texture + shape_params["density"] + 0.8 * gradient - 0.6) * 2.2)
    base = fat + (0.30 - fat) * glandular
    img = thickness * (base + 0.30 * density * glandular + 0.035 * fine)
    img = np.maximum(img, pectoral * (0.72 + 0.04 * fine))
    draw_findings(img, rng, view, findings)
    img *= _sigmoid((thickness - 0.05) * 40)  # lesions stay inside the breast
    return img.astype(np.float32), r.astype(np.float32)


def _upsample(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling at pixel centres, one axis at a time (fast for large sizes)."""

    def along(axis_len: int, out_len: int):
        src = np.clip((np.arange(out_len, dtype=np.float32) + 0.5) * axis_len / out_len - 0.5, 0, axis_len - 1)
        low = np.minimum(src.astype(np.int64), axis_len - 2) if axis_len > 1 else np.zeros(out_len, np.int64)
        return low, np.minimum(low + 1, axis_len - 1), (src - low).astype(np.float32)

    r0, r1, fr = along(image.shape[0], size[0])
    rows = image[r0] * (1.0 - fr[:, None]) + image[r1] * fr[:, None]
    c0, c1, fc = along(image.shape[1], size[1])
    return (rows[:, c0] * (1.0 - fc) + rows[:, c1] * fc).astype(np.float32)


def render_view_with_mask(
    rng: np.random.Generator,
    size: tuple[int, int],
    view: str,
    shape_params: dict,
    findings: list[dict],
) -> tuple[np.ndarray, np.ndarray]:
    """(intensity float32 about [0, 1], true breast mask bool); chest wall at column 0.

    A view larger than 1024 px is rendered at that detail and resampled up (texture
    and outline alike); the detector noise is added at full size.
    """
    h, w = int(size[0]), int(size[1])
    factor = max(h, w) / _DETAIL_SIZE
    if factor > 1.0:
        detail = (max(16, round(h / factor)), max(16, round(w / factor)))
        img, r = _render(rng, detail, view, shape_params, findings)
        img, r = _upsample(img, (h, w)), _upsample(r, (h, w))
    else:
        img, r = _render(rng, (h, w), view, shape_params, findings)
    img += 0.015 + 0.006 * rng.standard_normal(img.shape, dtype=np.float32)  # detector offset and noise
    np.clip(img, 0.0, 1.0, out=img)
    return img, r < 1.0


def render_view(
    rng: np.random.Generator,
    size: tuple[int, int],
    view: str,
    shape_params: dict,
    findings: list[dict],
) -> np.ndarray:
    """One view, chest wall at column 0, float32 intensity (tissue bright), about [0, 1]."""
    return render_view_with_mask(rng, size, view, shape_params, findings)[0]


def breast_shape(rng: np.random.Generator) -> dict:
    """One patient's breast: outline, texture and fat, shared by all four views."""
    return {
        "depth": rng.uniform(0.62, 0.86),
        "height": rng.uniform(0.72, 0.9),
        "center": rng.uniform(0.46, 0.54),
        "pectoral": rng.uniform(0.22, 0.34),
        "beta": rng.uniform(2.6, 3.3),
        "density": rng.uniform(-0.8, 0.6),
        "periphery": rng.uniform(0.04, 0.09),
        "rim": rng.uniform(0.08, 0.16),
        "fat": rng.uniform(0.09, 0.18),
    }
