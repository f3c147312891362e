"""The promotion gate's rules, on hand-made holdout scores."""

from __future__ import annotations

import math
from pathlib import Path

from typer.testing import CliRunner

from loopml.cli import app
from loopml.core.config import GateSettings, load_settings
from loopml.models import gate
from loopml.models.registry import Decision, record
from loopml.workloads.demand.workload import DemandWorkload
from loopml.workloads.recsys.workload import RecsysWorkload

DEMAND = DemandWorkload()


def _demand(wape: float, abs_bias: float = 0.02, **stores: float) -> dict[str, float]:
    return {
        "wape": wape,
        "abs_bias": abs_bias,
        **{f"wape_store_{k}": v for k, v in stores.items()},
    }


def _baselines(
    seasonal: float = 0.50, average: float = 0.55, last: float = 0.60, **stores: float
) -> dict[str, dict[str, float]]:
    return {
        "seasonal_naive": _demand(seasonal, **stores),
        "moving_average": _demand(average, **stores),
        "last_value": _demand(last, **stores),
    }


def test_first_model_only_needs_to_beat_the_baselines() -> None:
    scores = {"challenger": _demand(0.40), **_baselines()}
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, GateSettings()))
    assert ok and "0.4000 vs strongest baseline seasonal_naive 0.5000" in reason
    scores["challenger"] = _demand(0.55)
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, GateSettings()))
    assert not ok and reason.startswith("beats baselines failed")


def test_the_strongest_baseline_is_the_bar_and_the_margin_applies_to_it() -> None:
    # Beats seasonal naive (0.50) but not the moving average (0.45).
    scores = {"challenger": _demand(0.47), **_baselines(average=0.45)}
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, GateSettings()))
    assert not ok and "strongest baseline moving_average 0.4500" in reason
    scores["challenger"] = _demand(0.44)
    assert gate.verdict(gate.checks(DEMAND, scores, GateSettings()))[0]
    strict = GateSettings(margin=0.05)  # needs wape <= 0.45 x 0.95 = 0.4275
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, strict))
    assert not ok and "moving_average" in reason and "0.4275" in reason


def test_a_slice_below_its_strongest_baseline_is_refused() -> None:
    bars = _baselines(S01=0.30, S02=0.60)
    bars["last_value"] = _demand(0.60, S01=0.50, S02=0.40)  # best on S02
    scores = {"challenger": _demand(0.35, S01=0.28, S02=0.48), **bars}
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, GateSettings()))
    assert not ok and "slices vs baselines failed" in reason
    assert "S02 +20% vs last_value" in reason
    scores["challenger"] = _demand(0.35, S01=0.28, S02=0.43)  # within 10 %
    assert gate.verdict(gate.checks(DEMAND, scores, GateSettings()))[0]


def test_a_slice_of_a_few_users_is_not_judged_and_the_reason_says_so() -> None:
    recsys = RecsysWorkload()
    prefix, size = recsys.slice_prefix, recsys.slice_size_prefix

    def side(ndcg: float, small: float, big: float) -> dict[str, float]:
        return {
            "ndcg_at_10": ndcg,
            f"{prefix}finance": small,
            f"{prefix}sales": big,
            f"{size}finance": 12.0,
            f"{size}sales": 80.0,
        }

    bars = {name: side(0.30, 0.40, 0.30) for name in recsys.baselines}
    # finance is 25 % below its baselines but has 12 users: noise, not judged.
    scores = {"challenger": side(0.35, 0.30, 0.34), **bars}
    ok, reason = gate.verdict(gate.checks(recsys, scores, GateSettings()))
    assert ok, reason
    found = {c.name: c.message for c in gate.checks(recsys, scores, GateSettings())}
    assert "0 of 1 slices" in found["slices vs baselines"]
    assert "1 not judged (fewer than 30: finance)" in found["slices vs baselines"]
    # With a lower bar for slice size the same scores are refused.
    lower = GateSettings(min_slice_size=10)
    ok, reason = gate.verdict(gate.checks(recsys, scores, lower))
    assert not ok and "finance -25%" not in reason and "finance +25% vs" in reason


def test_challenger_must_beat_the_champion_by_the_margin() -> None:
    scores = {
        "challenger": _demand(0.39),
        "champion": _demand(0.40),
        **_baselines(),
    }
    assert gate.verdict(gate.checks(DEMAND, scores, GateSettings()))[0]
    strict = GateSettings(margin=0.05)  # needs wape <= 0.38
    ok, reason = gate.verdict(gate.checks(DEMAND, scores, strict))
    assert not ok and "beats champion failed" in reason and "0.3800" in reason
    scores["challenger"] = _demand(0.40)  # a tie is not better
    assert not gate.verdict(gate.checks(DEMAND, scores, GateSettings()))[0]


def test_guard_and_slice_regressions_block_a_better_average() -> None:
    champion = _demand(0.40, abs_bias=0.01, S01=0.30, S02=0.50)
    base = {"champion": champion, **_baselines(S01=0.60, S02=0.60)}
    biased = {**base, "challenger": _demand(0.35, abs_bias=0.10, S01=0.30, S02=0.40)}
    ok, reason = gate.verdict(gate.checks(DEMAND, biased, GateSettings()))
    assert not ok and "guard abs_bias failed" in reason
    one_store_worse = {
        **base,
        "challenger": _demand(0.35, abs_bias=0.01, S01=0.36, S02=0.35),
    }
    ok, reason = gate.verdict(gate.checks(DEMAND, one_store_worse, GateSettings()))
    assert not ok and "slices failed" in reason and "S01 +20%" in reason
    assert "slices vs baselines" not in reason


def test_model_check_problems_and_nan_metrics_never_pass() -> None:
    scores = {"challenger": _demand(0.30), **_baselines()}
    found = gate.checks(DEMAND, scores, GateSettings(), ["a forecast is negative"])
    ok, reason = gate.verdict(found)
    assert not ok and reason.startswith(
        "model checks failed: a forecast is negative (passed: "
        "wape 0.3000 vs strongest baseline seasonal_naive 0.5000"
    )
    scores["challenger"] = _demand(math.nan)
    assert not gate.verdict(gate.checks(DEMAND, scores, GateSettings()))[0]


def _recsys_baselines(
    segment: float = 0.20, global_: float = 0.18, als: float = 0.15
) -> dict[str, dict[str, float]]:
    return {
        "segment_popularity": {"ndcg_at_10": segment, "coverage": 0.10},
        "global_popularity": {"ndcg_at_10": global_, "coverage": 0.05},
        "als": {"ndcg_at_10": als, "coverage": 0.60},
    }


def test_a_recommender_above_segment_but_below_global_popularity_is_refused(
    tiny_env: Path,
) -> None:
    recsys = RecsysWorkload()
    scores = {
        "challenger": {"ndcg_at_10": 0.386, "coverage": 0.50},
        **_recsys_baselines(segment=0.355, global_=0.399),
    }
    promoted, reason = gate.verdict(gate.checks(recsys, scores, GateSettings()))
    assert not promoted
    assert "strongest baseline global_popularity 0.3990" in reason
    # `loopml history` names it: the decision as the promote stage records it.
    settings = load_settings("default")
    decision = Decision("recsys", "reject", False, None, "1", reason)
    record(decision, settings.state_dir("recsys") / "history.jsonl", tag=False)
    shown = CliRunner().invoke(app, ["history", "-w", "recsys"])
    assert shown.exit_code == 0, shown.output
    assert "reject" in shown.output and "global_popularity 0.3990" in shown.output


def test_higher_is_better_workloads_compare_the_other_way() -> None:
    recsys = RecsysWorkload()
    scores = {
        "challenger": {"ndcg_at_10": 0.30, "coverage": 0.50},
        "champion": {"ndcg_at_10": 0.25, "coverage": 0.80},
        **_recsys_baselines(),
    }
    ok, reason = gate.verdict(gate.checks(recsys, scores, GateSettings()))
    assert not ok and "guard coverage failed" in reason  # 0.30 coverage lost
    scores["challenger"]["coverage"] = 0.78
    assert gate.verdict(gate.checks(recsys, scores, GateSettings()))[0]


def test_a_challenger_serving_one_group_much_worse_is_refused() -> None:
    """Inclusion: NDCG of one age band far below the other's refuses it."""
    recsys = RecsysWorkload()
    prefix, size = recsys.group_prefix, recsys.group_size_prefix

    def challenger(young: float, old: float, n_old: float = 60.0) -> dict[str, float]:
        return {
            "ndcg_at_10": 0.40,
            "coverage": 0.50,
            f"{prefix}under_40": young,
            f"{prefix}40_and_over": old,
            f"{size}under_40": 140.0,
            f"{size}40_and_over": n_old,
        }

    # 0.30 is 25 % below 0.40: beyond the default tolerance (20 %).
    scores = {"challenger": challenger(0.40, 0.30), **_recsys_baselines()}
    ok, reason = gate.verdict(gate.checks(recsys, scores, GateSettings()))
    assert not ok and reason.startswith("group gap failed")
    assert "ndcg_at_10 of 40_and_over 0.3000 is 25% below under_40 0.4000" in reason
    assert "passed: ndcg_at_10 0.4000 vs strongest baseline" in reason
    assert gate.verdict(gate.checks(recsys, scores, GateSettings(max_group_gap=0.3)))[0]
    # 10 % apart passes, and the run's reason shows the gap.
    scores["challenger"] = challenger(0.36, 0.40)
    ok, reason = gate.verdict(gate.checks(recsys, scores, GateSettings()))
    assert ok and "under_40 0.3600 is 10% below 40_and_over 0.4000" in reason
    # A group of a few users is not compared (its mean is noise), and said so.
    scores["challenger"] = challenger(0.40, 0.20, n_old=12.0)
    ok, reason = gate.verdict(gate.checks(recsys, scores, GateSettings()))
    assert ok and "not compared (fewer than 30): 40_and_over" in reason
    # A workload without groups (demand) gets no group check at all.
    plain = {"challenger": _demand(0.40), **_baselines()}
    assert "group gap" not in {
        c.name for c in gate.checks(DEMAND, plain, GateSettings())
    }


def test_the_model_card_shows_each_group_and_the_gap_check() -> None:
    from types import SimpleNamespace

    from loopml.models import card

    recsys = RecsysWorkload()
    prefix, size = recsys.group_prefix, recsys.group_size_prefix

    def side(young: float, old: float) -> dict[str, float]:
        return {
            "ndcg_at_10": (young + old) / 2,
            "coverage": 0.5,
            f"{prefix}under_40": young,
            f"{prefix}40_and_over": old,
            f"{size}under_40": 140.0,
            f"{size}40_and_over": 60.0,
        }

    scores = {"challenger": side(0.38, 0.40), **_recsys_baselines()}
    scores["segment_popularity"] = side(0.20, 0.22)
    found = gate.checks(recsys, scores, GateSettings())
    version = SimpleNamespace(version="1", tags={}, run_id="run")
    decision = Decision("recsys", "promote", True, None, "1", "passed")
    text = card.render(recsys, version, scores, found, decision, {})  # type: ignore[arg-type]
    groups = text.split("## Groups (inclusion)")[1].split("## Gate")[0]
    assert "| 40_and_over | 60 | 0.4000 | 0.2200 | - | - |" in groups
    assert "| under_40 | 140 | 0.3800 | 0.2000 | - | - |" in groups
    assert "- pass: group gap: ndcg_at_10 of under_40 0.3800 is 5% below" in text
    # Group figures are not repeated in the overall metrics table.
    assert f"| {prefix}under_40 |" not in text
