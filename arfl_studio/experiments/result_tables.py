"""A run's comparison table as text and files: Markdown, LaTeX, CSV and XLSX (the paper's Tables 2-3
layout), each row with its folds and seeds, and the markers for partial rows and tests."""

from __future__ import annotations

import csv
import io
from pathlib import Path


from arfl_studio import atomic
from arfl_studio.evaluation.units import UNIT_WORDS
from arfl_studio.experiments.results import FORMATS, ORACLE_LABEL, comparison_rows, data_columns, load_results


LAYOUT_TITLES = {"cbis-ddsm": "CBIS-DDSM", "vindr": "VinDr-Mammo", "inbreast": "INbreast", "rsna": "RSNA", "cmmd": "CMMD"}
PARTIAL_ROW = "\u2020"  # dagger: a row on fewer folds (or seeds) than the run declares
PARTIAL_TEST = "\u2021"  # double dagger: a test on fewer folds than the run declares


def mean_std_text(mean, std, scale: float = 100.0, missing: str = "--") -> str:
    """The one format of a mean over folds or seeds everywhere (tables, app, figures): "90.3 ± 0.8"
    (``scale`` 100: fractions as percent); the mean alone when there is no std."""
    if mean is None or mean != mean:
        return missing
    return f"{scale * mean:.1f}" + (f" ± {scale * std:.1f}" if std is not None and std == std else "")


def _pct(mean, std) -> str:
    return mean_std_text(mean, std)


def _pair(a, b) -> str:
    return "--" if a is None or b is None else f"{100 * a:.0f} / {100 * b:.0f}"


def _pfmt(p, partial=False) -> str:
    if p is None:
        return ""
    return ("<0.001" if p < 0.001 else f"{p:.3f}") + (f" {PARTIAL_TEST}" if partial else "")


def folds_text(row: dict) -> str:
    """'3/5 †', or '5/5 × 3 seeds': the folds (and seeds per fold) a row is over, marked when partial."""
    text = f"{row['folds']}/{row['folds_declared']}"
    if (row.get("seeds_declared") or 1) > 1:
        text += f" \u00d7 {row.get('seeds_min') or 0}/{row['seeds_declared']} seeds"
    return text + (f" {PARTIAL_ROW}" if row.get("partial") else "")


def _pooled(row: dict, metric: str) -> str:
    auc = row.get(f"pooled_{metric}")
    if auc is None:
        return "--"
    return f"{100 * auc:.1f} ({100 * row[f'pooled_{metric}_lo']:.1f}\u2013{100 * row[f'pooled_{metric}_hi']:.1f})" + (
        f" {PARTIAL_ROW}" if row.get(f"pooled_{metric}_partial") else ""
    )


def _display_rows(results: dict) -> tuple[list[str], list[list[str]], list[str]]:
    ref = results.get("reference")
    declared = results.get("folds")
    rows = comparison_rows(results)
    rates = any(row.get("standard_sensitivity") is not None for row in rows)
    pooled = any(row.get("pooled_standard_auc") is not None for row in rows)
    delong = ref is not None and any(f"p_delong_standard_auc_vs_{ref}" in row for row in rows)
    header = ["Training method", "Folds", "Standard AUC", "Adversarial AUC", "Mean AUC"]
    header += ["Sens / spec", "Adv. sens / spec"] if rates else []
    header += ["Pooled OOF standard AUC (95% CI)", "Pooled OOF adversarial AUC (95% CI)"] if pooled else []
    if ref is not None:
        header += [f"p vs {ref} (standard)", f"p vs {ref} (adversarial)", f"p vs {ref} (mean)"]
        header += [f"DeLong p vs {ref} (standard)", f"DeLong p vs {ref} (adversarial)"] if delong else []
    body, notes = [], []
    for row in rows:
        line = [
            f"{row['key']}. {row['method']}",
            folds_text(row),
            _pct(row["standard_auc"], row["standard_auc_std"]),
            _pct(row["adversarial_auc"], row["adversarial_auc_std"]),
            "--" if row["mean_auc"] is None else f"{100 * row['mean_auc']:.1f}",
        ]
        if rates:
            line += [_pair(row.get(f"{part}_sensitivity"), row.get(f"{part}_specificity")) for part in ("standard", "adversarial")]
        if pooled:
            line += [_pooled(row, m) for m in ("standard_auc", "adversarial_auc")]
        if ref is not None:
            line += [
                _pfmt(row.get(f"p_{m}_vs_{ref}"), row.get(f"p_{m}_vs_{ref}_partial"))
                for m in ("standard_auc", "adversarial_auc", "mean_auc")
            ]
            if delong:
                line += [
                    _pfmt(row.get(f"p_delong_{m}_vs_{ref}"), row.get(f"p_delong_{m}_vs_{ref}_partial"))
                    for m in ("standard_auc", "adversarial_auc")
                ]
        body.append(line)
        if row.get("pooled_standard_auc") is not None:
            notes.append(
                f"{row['key']}: pooled over {row['pooled_standard_auc_folds']} folds, n = "
                f"{row['pooled_standard_auc_n']} images ({row['pooled_standard_auc_n_positive']} malignant / "
                f"{row['pooled_standard_auc_n_negative']} benign)."
            )
        if row.get("oracle_adversarial_auc") is not None:
            notes.append(
                f"{row['key']}: oracle adversarial AUC {100 * row['oracle_adversarial_auc']:.1f} "
                f"({ORACLE_LABEL}); the table reports the clean-BN route."
            )
    ev = results.get("evaluation") or {}
    seeds = results.get("seeds") or 1
    official = (results.get("data") or {}).get("split") == "official"
    over = (
        "on the official test set (one fold: no std, no fold-level test"
        if official
        else f"as mean ± std over the patient-level folds in column Folds (finished / the {declared} the run declares"
    )
    notes.insert(
        0,
        f"AUC in % {UNIT_WORDS.get(ev.get('unit', 'image'), 'per image')} {over}"
        + (f"; a fold's value is the mean over its {seeds} training seeds" if seeds > 1 else "")
        + f"); adversarial: {ev.get('kind', 'pgd').upper()} eps={ev.get('eps')} steps={ev.get('steps')}"
        + (
            ""
            if official
            else "; p: two-sided Mann-Whitney U on the fold AUCs both methods have (paired Wilcoxon signed-rank in results.json)"
        )
        + ".",
    )
    notes[1:1] = data_notes(results)
    if rates:
        notes.insert(
            1,
            "Sens / spec: sensitivity / specificity in % at each fold model's decision threshold "
            "(chosen on its training folds, stored in model.json).",
        )
    if pooled:
        notes.insert(
            1,
            "Pooled OOF: AUC in % of every held-out image's score pooled over the folds, with its "
            "95% DeLong interval" + ("; DeLong p: paired DeLong test on the same images." if delong else "."),
        )
    if any(row["partial"] or row.get("pooled_standard_auc_partial") for row in rows):
        notes.append(
            f"{PARTIAL_ROW} on fewer folds{' or seeds' if seeds > 1 else ''} than the run declares "
            f"({declared}): the row's mean ± std, or the pooled AUC, is over the folds it states only."
        )
    if any(row.get(k) for row in rows for k in row if k.endswith("_partial") and k.startswith("p_")):
        notes.append(f"{PARTIAL_TEST} test on fewer than {declared} folds: only the folds both methods finished.")
    if not results.get("complete", True):
        notes.append("Incomplete: some folds have not finished.")
    return header, body, notes


def data_notes(results: dict) -> list[str]:
    """'Split: ...' and 'Labels: ...': which patients were tested on, and how labels were derived
    (a BI-RADS mapping for VinDr-Mammo and INbreast), as every table format prints them."""
    columns = data_columns(load_results(results))
    notes = [f"Split: {columns['split']}."] if "split" in columns else []
    if "labels" in columns:
        layout = (results.get("data") or {}).get("layout")
        notes.append(f"Labels: {columns['labels']}" + (f" ({LAYOUT_TITLES.get(layout, layout)} layout)." if layout else "."))
    return notes


def _tex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("<", r"$<$"),
        (PARTIAL_ROW, r"$^\dagger$"),
        (PARTIAL_TEST, r"$^\ddagger$"),
        ("\u00d7", r"$\times$"),
        ("\u2013", "--"),
        ("\u00b1", r"$\pm$"),
    ):
        text = text.replace(a, b)
    return text


def render_table(results: dict | str | Path, fmt: str) -> str | bytes:
    results = load_results(results)
    if fmt == "csv":
        rows = comparison_rows(results)
        fields = list(dict.fromkeys(k for row in rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return buffer.getvalue()
    header, body, notes = _display_rows(results)
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":-:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines) + "\n\n" + "\n".join(f"_{n}_  " for n in notes) + "\n"
    if fmt == "tex":
        cols = "l" + "c" * (len(header) - 1)
        lines = [
            r"% requires \usepackage{booktabs}",
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{_tex_escape(results.get('name', 'experiment'))}: {_tex_escape(notes[0])}}}",
            rf"\begin{{tabular}}{{{cols}}}",
            r"\toprule",
            " & ".join(_tex_escape(h) for h in header) + r" \\",
            r"\midrule",
        ]
        lines += [" & ".join(_tex_escape(c) for c in r) + r" \\" for r in body]
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines += [rf"\par\footnotesize {_tex_escape(n)}" for n in notes[1:]]
        lines += [r"\end{table}"]
        return "\n".join(lines) + "\n"
    if fmt == "xlsx":
        from openpyxl import Workbook
        from openpyxl.styles import Font

        wb = Workbook()
        ws = wb.active
        ws.title = "comparison"
        ws.append(header)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for r in body:
            ws.append(r)
        ws.append([])
        for n in notes:
            ws.append([n])
        raw = wb.create_sheet("values")
        rows = comparison_rows(results)
        fields = list(dict.fromkeys(k for row in rows for k in row))
        raw.append(fields)
        for row in rows:
            raw.append([row.get(f) for f in fields])
        folds = wb.create_sheet("folds")
        folds.append(["key", "fold", "standard_auc", "adversarial_auc"])
        for m in results["methods"]:
            for k, (s, a) in enumerate(zip(m["standard_auc"]["per_fold"], m["adversarial_auc"]["per_fold"])):
                folds.append([m["key"], k, s, a])
        workbook = io.BytesIO()
        wb.save(workbook)
        return workbook.getvalue()
    raise ValueError(f"table format must be one of {FORMATS}, got {fmt!r}")


def export_table(results: dict | str | Path, path: str | Path, fmt: str | None = None) -> Path:
    """Write the comparison table as csv, xlsx (openpyxl), md or tex (booktabs), atomically."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"table format must be one of {FORMATS}, got {fmt!r}")
    content = render_table(results, fmt)
    if isinstance(content, bytes):
        return atomic.write_bytes(path, content)
    return atomic.write_text(path, content)
