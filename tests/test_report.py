"""Statistics, tables and figures of the comparison report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mrirecon.evaluate import VolumeScore, read_scores_csv
from mrirecon.methods import comparison_pairs
from mrirecon.report.figures import PanelSlice, box_figure, panel_figure
from mrirecon.report.html import Figure, render_html
from mrirecon.report.stats import (
    bootstrap_ci,
    group_stats,
    paired_difference,
    paired_table,
    wilcoxon_p,
    write_metrics_csv,
)
from mrirecon.report.tables import markdown, mean_table, paired_diff_table, text

PNG = b"\x89PNG\r\n\x1a\n"


def _rows(values_a, values_b, a="unet", b="cs", acc=4.0):
    rows = [VolumeScore(f"f{i}.h5", a, acc, 0.1, 30.0, v) for i, v in enumerate(values_a)]
    rows += [VolumeScore(f"f{i}.h5", b, acc, 0.2, 28.0, v) for i, v in enumerate(values_b)]
    return rows


def test_wilcoxon_matches_scipy_and_states_na():
    d = np.array([0.03, 0.01, -0.005, 0.02, 0.04, 0.015, 0.025])
    p, note = wilcoxon_p(d)
    assert note == "" and p == pytest.approx(stats.wilcoxon(d).pvalue)
    assert p == pytest.approx(2 * 2 / 2**7)  # exact: one negative rank (1) of 7
    assert math.isnan(wilcoxon_p([0.1])[0]) and "n=1 < 2" in wilcoxon_p([0.1])[1]
    assert "all differences are zero" in wilcoxon_p([0.0, 0.0, 0.0])[1]


def test_bootstrap_ci_is_seeded_and_covers_the_mean():
    rng = np.random.RandomState(1)
    d = rng.normal(0.05, 0.02, size=40)
    lo, hi = bootstrap_ci(d, np.random.RandomState(0), 4000)
    assert (lo, hi) == bootstrap_ci(d, np.random.RandomState(0), 4000)
    assert lo < d.mean() < hi
    se = d.std(ddof=1) / np.sqrt(d.size)  # normal-theory interval for comparison
    assert lo == pytest.approx(d.mean() - 1.96 * se, abs=0.5 * se)
    assert hi == pytest.approx(d.mean() + 1.96 * se, abs=0.5 * se)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ci([1.0], np.random.RandomState(0))


def test_paired_difference_pairs_by_file_and_handles_small_n():
    rows = _rows([0.9, 0.8, 0.85], [0.8, 0.75])  # f2 has no cs result
    d = paired_difference(rows, "unet", "cs", "ssim", 4.0, np.random.RandomState(0), 500)
    assert d.n == 2 and d.mean == pytest.approx(((0.9 - 0.8) + (0.8 - 0.75)) / 2)
    assert d.ci_low <= d.mean <= d.ci_high
    one = paired_difference(
        _rows([0.9], [0.8]), "unet", "cs", "ssim", 4.0, np.random.RandomState(0)
    )
    assert one.n == 1 and one.mean == pytest.approx(0.1)
    assert math.isnan(one.ci_low) and math.isnan(one.p_value) and "n=1" in one.note
    none = paired_difference(rows, "unet", "cs", "ssim", 8.0, np.random.RandomState(0))
    assert none.n == 0 and "no pairs" in none.note
    same = paired_difference(_rows([0.5, 0.6], [0.5, 0.6]), "unet", "cs", "ssim", 4.0,
                             np.random.RandomState(0))  # fmt: skip
    assert same.mean == 0 and same.ci_low == same.ci_high == 0 and "all differences" in same.note


def test_tables_state_na_and_render():
    rows = _rows([0.9], [0.8])
    diffs = paired_table(rows, [("unet", "cs")], [4.0], n_boot=100)
    assert len(diffs) == 3  # ssim, psnr, nmse
    t = paired_diff_table(diffs)
    md = markdown(t)
    assert "U-Net − CS (l1-wavelet)" in md and "n/a (n=1 < 2)" in md
    mt = mean_table(_rows([0.9, 0.7], [0.8, 0.6]), ["zero-filled", "cs", "unet"])
    assert [r[1] for r in mt.rows] == ["CS (l1-wavelet)", "U-Net"]
    assert "0.7000 ± 0.1414" in text(mt)  # mean ± sample std of (0.8, 0.6)
    st = group_stats(_rows([0.9, 0.7], [0.8, 0.6]))
    assert st[("unet", 4.0)]["ssim"].n == 2


def test_comparison_pairs():
    assert comparison_pairs(["zero-filled", "cs", "unet"]) == [
        ("unet", "cs"),
        ("cs", "zero-filled"),
    ]
    assert comparison_pairs(["zero-filled", "unet"]) == [("unet", "zero-filled")]
    assert comparison_pairs(["zero-filled"]) == []


def test_metrics_csv_round_trip(tmp_path):
    rows = _rows([0.9, 0.8], [0.85, 0.7])
    path = write_metrics_csv(tmp_path / "m.csv", rows)
    assert path.read_text().splitlines()[0] == "file,method,acceleration,nmse,psnr,ssim,dataset"
    assert read_scores_csv(path) == rows


def test_figures_are_pngs_and_check_shapes():
    rng = np.random.RandomState(0)
    tgt = rng.rand(24, 20).astype(np.float32)
    sl = PanelSlice(
        "a.h5, slice 0", tgt, {"zero-filled": tgt * 0.9, "unet": tgt * 1.05}, rng.rand(30) > 0.5
    )
    assert panel_figure([sl], ["zero-filled", "unet"], "4x").startswith(PNG)
    with pytest.raises(ValueError, match="differs from the target"):
        PanelSlice("b", tgt, {"unet": tgt[:10]})
    with pytest.raises(ValueError, match="no reconstruction for cs"):
        panel_figure([sl], ["cs"], "4x")
    rows = _rows([0.9, 0.8], [0.85, 0.7]) + _rows([0.8, 0.7], [0.8, 0.6], acc=8.0)
    assert box_figure(rows, ["cs", "unet"], [4.0, 8.0]).startswith(PNG)


def test_html_is_self_contained_and_escaped():
    t = paired_diff_table(
        paired_table(_rows([0.9, 0.7], [0.8, 0.6]), [("unet", "cs")], [4.0], n_boot=50)
    )
    page = render_html("T <&>", [("data", "x<y")], [t], [("Figs", [Figure("cap", PNG, "figures/a.png")])],
                       [("metrics.csv", "metrics.csv")])  # fmt: skip
    assert "T &lt;&amp;&gt;" in page and "x&lt;y" in page
    assert 'src="data:image/png;base64,' in page and "http" not in page
