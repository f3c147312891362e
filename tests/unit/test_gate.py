"""The promotion gate's rules, on hand-made holdout scores."""

from __future__ import annotations

import math

from loopml.core.config import GateSettings
from loopml.models import gate
from loopml.workloads.demand.workload import DemandWorkload
from loopml.workloads.recsys.workload import RecsysWorkload

DEMAND = DemandWorkload()


def _demand(wape: float, abs_bias: float = 0.02, **stores: float) -> dict[str, float]:
    return {
        "wape": wape,
        "abs_bias": abs_bias,
        **{f"wape_store_{k}": v for k, v in stores.items()},
    }


def test_first_model_only_needs_to_beat_the_baseline() -> None:
    scores = {"challenger": _demand(0.40), "baseline": _demand(0.50)}
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, GateSettings()))
    assert ok and "0.4000 vs baseline 0.5000" in reason
    scores["challenger"] = _demand(0.55)
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, GateSettings()))
    assert not ok and reason.startswith("beats baseline failed")


def test_challenger_must_beat_the_champion_by_the_margin() -> None:
    scores = {
        "challenger": _demand(0.39),
        "champion": _demand(0.40),
        "baseline": _demand(0.50),
    }
    assert gate.verdict(gate.checks(DEMAND, scores, GateSettings()))[0]
    strict = GateSettings(margin=0.05)  # needs wape <= 0.38
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, strict))
    assert not ok and "beats champion failed" in reason and "0.3800" in reason
    scores["challenger"] = _demand(0.40)  # a tie is not better
    assert not gate.verdict(gate.checks(DEMAND, scores, GateSettings()))[0]


def test_guard_and_slice_regressions_block_a_better_average() -> None:
    champion = _demand(0.40, abs_bias=0.01, S01=0.30, S02=0.50)
    base = {"champion": champion, "baseline": _demand(0.50)}
    biased = {**base, "challenger": _demand(0.35, abs_bias=0.10, S01=0.30, S02=0.40)}
    ok, reason = gate.verdict(gate.checks(DEMAND, biased, GateSettings()))
    assert not ok and "guard abs_bias failed" in reason
    one_store_worse = {
        **base,
        "challenger": _demand(0.35, abs_bias=0.01, S01=0.36, S02=0.35),
    }
    ok, reason = gate.verdict(gate.checks(DEMAND, one_store_worse, GateSettings()))
    assert not ok and "slices failed" in reason and "S01 +20%" in reason


def test_model_check_problems_and_nan_metrics_never_pass() -> None:
    scores = {"challenger": _demand(0.30), "baseline": _demand(0.50)}
    found = gate.checks(DEMAND, scores, GateSettings(), ["a forecast is negative"])
    assert gate.verdict(found) == (
        False,
        "model checks failed: a forecast is negative (passed: "
        "wape 0.3000 vs baseline 0.5000)",
    )
    scores["challenger"] = _demand(math.nan)
    assert not gate.verdict(gate.checks(DEMAND, scores, GateSettings()))[0]


def test_higher_is_better_workloads_compare_the_other_way() -> None:
    recsys = RecsysWorkload()
    scores = {
        "challenger": {"ndcg_at_10": 0.30, "coverage": 0.50},
        "champion": {"ndcg_at_10": 0.25, "coverage": 0.80},
        "baseline": {"ndcg_at_10": 0.20, "coverage": 0.10},
    }
    ok, reason = gate.verdict(gate.checks(recsys, scores, GateSettings()))
    assert not ok and "guard coverage failed" in reason  # 0.30 coverage lost
    scores["challenger"]["coverage"] = 0.78
    assert gate.verdict(gate.checks(recsys, scores, GateSettings()))[0]
