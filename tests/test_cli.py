"""The ``skadaptive`` command line."""

import io

import pytest

from skadaptive._cli import main, run_demo


def test_demo_prints_every_stage_the_cascade_and_the_oracle():
    out = io.StringIO()
    figures = run_demo(cost_weights=(0.0, 0.05), out=out)
    text = out.getvalue()
    for name in (
        "stage logreg",
        "stage trees",
        "stage svc",
        "cost_weight=0.05",
        "oracle",
    ):
        assert name in text
    assert figures["oracle"]["accuracy"] >= max(
        figures[s]["accuracy"] for s in ("logreg", "trees", "svc")
    )
    cheap, costly = figures["cascade"][1], figures["cascade"][0]
    assert cheap["normalized_cost"] <= costly["normalized_cost"]
    assert cheap["accuracy"] > figures["logreg"]["accuracy"]


def test_negative_cost_weight_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--cost-weights", "-1"])
    assert exit_info.value.code == 2
    assert "non-negative" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
