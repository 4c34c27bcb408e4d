"""``campaign recommend evaluate`` and ``campaign model train | report`` on demo workspaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import AT, demo_workspace, invoke

__all__ = ["demo_workspace"]


def test_recommend_evaluate_prints_each_task(demo_workspace: Path, tmp_path: Path) -> None:
    # The store is filled now, by this command: a history that ends on a fixed day.
    text = demo_workspace.read_text()
    demo_workspace.write_text(text.replace("seed = 7", "seed = 7\nend = 2026-11-23T00:00:00"))
    page = tmp_path / "evaluation.html"
    result = invoke(
        "recommend", "evaluate", "-c", str(demo_workspace), "--k", "5", "--splits", "2",
        "--resamples", "200", "--html", str(page),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # The last purchase is on 2026-11-22: cutoffs 30 and 60 days before it.
    assert lines[0].startswith("Time splits at 2026-10-23 19:15, 2026-09-23 19:15: trained")
    assert lines[0].endswith("from 200 bootstrap resamples of the customers.")
    assert any(line.startswith("replenish (repeats allowed") for line in lines)
    assert any(line.startswith("discover (new-to-customer products only") for line in lines)
    headers = [line for line in lines if "┃ method" in line]
    assert [c.strip() for c in headers[0].strip("┃ ").split("┃")] == [
        "method", "precision@5", "recall@5", "NDCG@5", "MAP@5", "coverage", "NDCG@5 vs baseline",
    ]  # fmt: skip
    # Then the rolling splits: NDCG per cutoff and the mean.
    assert [c.strip() for c in headers[1].strip("┃ ").split("┃")] == [
        "method", "NDCG@5 2026-10-23", "NDCG@5 2026-09-23", "mean",
    ]  # fmt: skip
    for label in ("repeat-aware (ours)", "personal rebuy", "popularity", "EASE (ours)",
                  "item-to-item CF (ours)", "random"):  # fmt: skip
        assert any(line.startswith(f"│ {label}") for line in lines), label
    assert any(line.startswith("replenish: repeat-aware (ours) NDCG@5 ") for line in lines)
    assert any(line.startswith("discover: ") for line in lines)
    assert lines[-2].startswith("Note: ")
    assert lines[-1] == f"Wrote {page}"
    html = page.read_text()
    assert html.count("src='data:image/png;base64,") == 5  # a plot per metric
    assert "http" not in html


def test_recommend_evaluate_as_json_one_task(demo_workspace: Path) -> None:
    import json

    result = invoke(
        "recommend", "evaluate", "-c", str(demo_workspace), "--purpose", "discover",
        "--splits", "1", "--resamples", "100", "--format", "json",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["k"], data["test_days"], data["bootstrap_resamples"]) == (10, 30, 100)
    [task] = data["tasks"]
    assert (task["purpose"], task["baseline"]) == ("discover", "popular")
    [split] = task["splits"]
    methods = {m["method"]: m for m in split["methods"]}
    assert list(methods) == ["ease", "cf", "popular", "random"]
    ease = methods["ease"]
    assert set(ease) >= {"precision", "recall", "ndcg", "map", "hit_rate", "coverage"}
    assert ease["ndcg"]["low"] <= ease["ndcg"]["value"] <= ease["ndcg"]["high"]
    assert methods["popular"]["difference_from_baseline"] is None
    assert ease["difference_from_baseline"]["ndcg"]["value"] == pytest.approx(
        ease["ndcg"]["value"] - methods["popular"]["ndcg"]["value"]
    )
    assert split["tuning"]["method"] in ("cf", "ease")
    assert len(split["tuning"]["candidates"]) == 4


def test_report_needs_a_trained_model(demo_workspace: Path) -> None:
    result = invoke("model", "report", "uplift", "-c", str(demo_workspace))

    assert result.exit_code == 1
    assert result.output == (
        "Error: no uplift model in the store yet; run 'campaign model train uplift' first\n"
    )


def test_propensity_without_exposures_or_target_says_what_to_give(demo_workspace: Path) -> None:
    result = invoke("model", "train", "propensity", "-c", str(demo_workspace), "--at", AT)

    assert result.exit_code == 1
    assert result.output == (
        "Error: no exposures in the store to learn from; give --target COLUMN (a response "
        "trait) or --table FILE --target COLUMN\n"
    )


def test_uplift_needs_its_data_named(demo_workspace: Path) -> None:
    result = invoke("model", "train", "uplift", "-c", str(demo_workspace), "--at", AT)

    assert result.exit_code == 1
    assert result.output == (
        "Error: name the data: --experiment NAME (with a holdout) or --simulate VARIANT (demo)\n"
    )


def test_train_uplift_on_a_simulated_experiment_and_report_it(tmp_path: Path) -> None:
    assert invoke("init", str(tmp_path / "ws")).exit_code == 0
    config = tmp_path / "ws" / "config.toml"
    text = config.read_text().replace(
        "customers = 5000", "customers = 4000\nend = 2026-11-23T00:00:00"
    )
    config.write_text(text)

    trained = invoke(
        "model", "train", "uplift", "-c", str(config), "--at", AT, "--simulate", "discount"
    )

    assert trained.exit_code == 0, trained.output
    lines = trained.output.splitlines()
    assert lines[0] == "Stored uplift model v1."
    assert lines[1].startswith("Uplift model v1: ")
    assert "simulated experiment: 'discount' against a 50% holdout (4,000 customers" in lines[1]
    assert any(line.startswith("  two-model: Qini ") for line in lines)
    assert any(line.startswith("  class transformation: Qini ") for line in lines)
    assert any(
        line.startswith("Incremental conversions per 1,000 messages (top 30%") for line in lines
    )
    assert lines[-2].startswith("Mean predicted uplift by latent group: bargain_hunters ")
    # 4,000 simulated customers are too few for this model to beat random targeting.
    assert lines[-1].startswith(
        "No better than chance: held-out Qini coefficient -0.001, 95% interval [-0.006, 0.004]"
    )

    page = tmp_path / "uplift.html"
    report = invoke("model", "report", "uplift", "-c", str(config), "--html", str(page))
    assert report.exit_code == 0, report.output
    assert report.output.splitlines()[-1] == f"Wrote {page}"
    html = page.read_text()
    assert html.count("src='data:image/png;base64,") == 2
    assert "http" not in html


@pytest.mark.shared_data
def test_train_propensity_from_a_response_table(demo_workspace: Path, shared_data: Path) -> None:
    table = shared_data / "customer_personality" / "marketing_campaign.csv"

    result = invoke(
        "model",
        "train",
        "propensity",
        "-c",
        str(demo_workspace),
        "--table",
        str(table),
        "--separator",
        "tab",
        "--target",
        "Response",
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Stored propensity model v1."
    assert "on file marketing_campaign.csv (2,240 customers, 334 responders)." in lines[1]
    assert lines[2] == (
        "Class imbalance: 14.9% responders: balanced class weights in training, scores "
        "recalibrated to the base rate on out-of-fold predictions; stratified splits."
    )
    assert lines[3].startswith("Cross-validation (5 folds, ROC AUC): logistic regression 0.8")
    assert lines[4].startswith("Held out (560 customers): ROC AUC 0.9")


def test_models_learn_from_an_imported_experiment(tmp_path: Path) -> None:
    """Exposures imported with ``campaign track`` (half held out), conversions from the demo's
    purchases in the 14 days after: both models train, with features at the first exposure."""
    assert invoke("init", str(tmp_path / "ws")).exit_code == 0
    config = tmp_path / "ws" / "config.toml"
    text = config.read_text().replace(
        "customers = 5000", "customers = 1200\nend = 2026-11-23T00:00:00"
    )
    config.write_text(text)
    assert invoke("load", "-c", str(config)).exit_code == 0
    ids = [f"C{i:06d}" for i in range(1, 1201)]
    rows = [
        f"outside,{'holdout' if i % 2 else 'mail'},{customer},2026-09-01T00:00:00"
        for i, customer in enumerate(ids)
    ]
    exposures = tmp_path / "exposures.csv"
    exposures.write_text("experiment,variant,customer_id,timestamp\n" + "\n".join(rows) + "\n")
    tracked = invoke("track", "exposures", str(exposures), "-c", str(config))
    assert tracked.exit_code == 0, tracked.output

    uplift = invoke("model", "train", "uplift", "-c", str(config), "--experiment", "outside")
    propensity = invoke("model", "train", "propensity", "-c", str(config))

    assert uplift.exit_code == 0, uplift.output
    assert "on experiment 'outside' (1,200 customers, 600 treated;" in uplift.output
    assert propensity.exit_code == 0, propensity.output
    assert "on exposures and conversions in the store (600 customers" in propensity.output
    # The "mail" arm was sent nothing: no uplift to find, and the model says so.
    assert uplift.output.splitlines()[-1] == (
        "No better than chance: held-out Qini coefficient 0.001, 95% interval [-0.011, 0.013] "
        "(percentile bootstrap of 1,000 resamples), not above 0. Stored as rejected: runs do not "
        "target with it (they use the newest model that beats chance, if any). Train with more "
        "data, or give --accept to use v1 anyway."
    )
    assert propensity.output.splitlines()[-1].startswith(
        "Beats chance: cross-validated ROC AUC 0.7"
    )
    # A campaign targeting by the rejected uplift model is flagged by check.
    text = config.read_text()
    config.write_text(
        text.replace(
            "[campaigns.winback]\n",
            '[campaigns.winback]\ntarget = { by = "uplift", top = 50 }\n',
            1,
        )
    )
    check = invoke("check", "-c", str(config))
    assert check.exit_code == 0, check.output
    assert (
        "campaigns.winback.target: uses 'uplift', but the newest uplift model (v1) is no better "
        "than chance and was rejected; runs score no one by uplift, so this campaign selects no "
        "one by it. Retrain it, or accept it with 'campaign model train uplift --accept'"
    ) in " ".join(check.output.split())  # the console wraps long warnings
    accepted = invoke(
        "model", "train", "uplift", "-c", str(config), "--experiment", "outside", "--accept"
    )
    assert accepted.output.splitlines()[-1].endswith(
        "Stored as rejected, but accepted with --accept: runs target with it."
    )
    assert "no better than chance and was rejected" not in invoke("check", "-c", str(config)).output


def test_recommendations_option_is_validated_with_lines(demo_workspace: Path) -> None:
    text = demo_workspace.read_text()
    table = '[campaigns.newsletter.recommendations]\npurpose = "discover"\ncount = 3\n'
    assert text.count(table) == 1
    text = text.replace(
        table, '[campaigns.newsletter.recommendations]\ncount = 0\nmethod = "magic"\n'
    )
    demo_workspace.write_text(text)
    lines = text.splitlines()
    count = lines.index("count = 0") + 1
    method = lines.index('method = "magic"') + 1

    result = invoke("check", "-c", str(demo_workspace))

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {demo_workspace}:{count}: campaigns.newsletter.recommendations.count: must be "
        "greater than or equal to 1, got 0\n"
        f"{demo_workspace}:{method}: campaigns.newsletter.recommendations.method: must be one of "
        "'auto', 'cf', 'ease', 'content', 'blend', 'popular', 'repeat' or 'rebuy', got 'magic'\n"
    )


def test_a_method_of_the_other_purpose_is_refused_with_its_line(demo_workspace: Path) -> None:
    text = demo_workspace.read_text()
    table = '[campaigns.reorder-reminder.recommendations]\npurpose = "replenish"\n'
    assert text.count(table) == 1
    demo_workspace.write_text(text.replace(table, table + 'method = "ease"\n'))

    result = invoke("check", "-c", str(demo_workspace))

    assert result.exit_code == 1
    assert "campaigns.reorder-reminder.recommendations: method 'ease' is not one for purpose " in (
        result.output
    )
    assert "expected one of 'auto', 'repeat', 'rebuy', 'popular'" in result.output
