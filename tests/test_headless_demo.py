"""`arfl-studio` without a screen runs the headless demo end to end."""

import json

from arfl_studio import cli
from arfl_studio.experiments import headless_demo


def test_no_screen_runs_the_headless_demo(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    calls = []
    monkeypatch.setattr(headless_demo, "run_headless_demo", lambda: calls.append(1) or 0)
    assert cli.main([]) == 0 and calls == [1]


def test_headless_demo_trains_attacks_and_draws(tmp_path, capsys):
    out = tmp_path / "run"
    code = headless_demo.run_headless_demo(out, epochs=1, folds=2, size=32, demo_dir=tmp_path / "demo",
                                           demo_patients=12, demo_size=(96, 80))
    assert code == 0
    printed = capsys.readouterr().out
    assert "| F. Dual adversarial training + ARFL |" in printed and "sanity checks" in printed
    results = json.loads((out / "results.json").read_text())
    assert {m["key"] for m in results["methods"]} == set(headless_demo.DEMO_METHODS)
    attack = json.loads((out / "headless_demo_attack.json").read_text())
    assert [r["eps"] for r in attack["F"]["results"]] == list(headless_demo.SWEEP_EPS)
    assert (out / "saliency_A_vs_F.png").stat().st_size > 10_000
