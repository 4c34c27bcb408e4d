"""``campaign segment fit | assign | report`` end to end on a small demo workspace."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.test_cli import AT, demo_workspace, invoke

__all__ = ["demo_workspace"]


def set_segmentation(config: Path, old: str, new: str) -> None:
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))


def test_report_needs_a_model(demo_workspace: Path) -> None:
    result = invoke("segment", "report", "-c", str(demo_workspace))

    assert result.exit_code == 1
    assert result.output == (
        "Error: no segmentation model in the store yet; run 'campaign segment fit' first\n"
    )


def test_fit_assign_refit_and_report(demo_workspace: Path) -> None:
    fitted = invoke("segment", "fit", "-c", str(demo_workspace), "--at", AT)
    assert fitted.exit_code == 0, fitted.output
    lines = fitted.output.splitlines()
    assert lines[0] == (
        "Segmentation model v1: kmeans, 4 segments. k = 4 is set in the configuration."
    )
    assert re.search(r"│  1 │ VIP +│ +\d+ │", fitted.output)
    assert "Quality by k (* chosen)" in fitted.output

    assigned = invoke("segment", "assign", "-c", str(demo_workspace), "--at", AT)
    assert assigned.exit_code == 0, assigned.output
    assert assigned.output.splitlines()[0] == "Segmentation model v1 (stored)."
    assert assigned.output.splitlines()[-1] == "400 customers entered a segment, 0 left one."

    # Five segments now: the four old ones keep their ids and names, the fifth is new.
    set_segmentation(demo_workspace, "k = 4", "k = 5")
    set_segmentation(demo_workspace, '4 = "Newcomers"', '4 = "Newcomers"\n5 = "Rising"')
    refitted = invoke("segment", "fit", "-c", str(demo_workspace), "--at", AT)
    assert refitted.exit_code == 0, refitted.output
    assert refitted.output.splitlines()[0].startswith("Segmentation model v2: kmeans, 5 segments.")
    assert "Customers moved" in refitted.output
    assert re.search(r"┃ from ┃ +1 ┃ +2 ┃ +3 ┃ +4 ┃ +5 ┃", refitted.output)

    report = invoke("segment", "report", "-c", str(demo_workspace), "--format", "json")
    assert report.exit_code == 0, report.output
    data = json.loads(report.output)
    assert data["model"]["version"] == 2
    assert data["model"]["k"] == 5
    assert [s["id"] for s in data["segments"]] == [1, 2, 3, 4, 5]
    assert [s["name"] for s in data["segments"]][:4] == ["VIP", "Regulars", "Lapsed", "Newcomers"]
    assert sum(s["size"] for s in data["segments"]) == 400
    assert set(data["segments"][0]["means"]) >= {"recency", "frequency", "monetary"}
    (score,) = data["k_search"]
    assert set(score) == {
        "k",
        "inertia",
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "stability",
        "stability_std",
        "holdout",
    }
    # The migration matrix counts each of the 400 customers once, from the v1 memberships.
    migration = data["migration"]
    assert sum(sum(row.values()) for row in migration.values()) == 400
    assert set(migration) == {"1", "2", "3", "4"}
    # Most customers stay where they were.
    assert sum(migration[i].get(i, 0) for i in migration) > 200


def test_auto_ward_html_report(
    demo_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("segmentation.html.TSNE_SAMPLE", 100)  # t-SNE takes seconds per 1,000
    set_segmentation(
        demo_workspace,
        'model = "kmeans"\nk = 4',
        'model = "ward"\nk = "auto"\nk_range = [2, 4]\nstability_refits = 1',
    )
    set_segmentation(demo_workspace, '3 = "Lapsed"\n4 = "Newcomers"\n', "")
    fitted = invoke("segment", "fit", "-c", str(demo_workspace), "--at", AT)
    assert fitted.exit_code == 0, fitted.output
    assert "Elbow (knee of the inertia curve): k = " in fitted.output
    page = tmp_path / "segments.html"

    report = invoke("segment", "report", "-c", str(demo_workspace), "--html", str(page))

    assert report.exit_code == 0, report.output
    assert report.output.splitlines()[-1] == f"Wrote {page}"
    html = page.read_text()
    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,", html)
    assert images == [
        "Segment sizes",
        "Profile heatmap (z-scores)",
        "Quality metrics by k",
        "PCA",
        "t-SNE",
        "Ward dendrogram",
    ]
    # Self-contained: nothing is loaded from elsewhere.
    assert "http" not in html
    assert "<script" not in html


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "k = 4",
            'k = "auto"\nmodel = "rfm"',
            "segmentation: k = 'auto' does not apply to model 'rfm', whose named segments are "
            "fixed",
        ),
        ("k = 4", "k = 31", "segmentation.k: must be less than or equal to 30, got 31"),
        (
            "k = 4",
            'k = "many"',
            "segmentation.k: must be a whole number from 2 to 30 or 'auto', got 'many'",
        ),
        (
            "k = 4",
            "k = 4\nk_range = [6, 3]",
            "segmentation.k_range: must be [low, high] with 2 <= low <= high <= 30, got [6, 3]",
        ),
    ],
)
def test_segmentation_config_errors(demo_workspace: Path, old: str, new: str, message: str) -> None:
    set_segmentation(demo_workspace, 'model = "kmeans"\n', "")
    set_segmentation(demo_workspace, old, new)
    result = invoke("segment", "fit", "-c", str(demo_workspace))

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {demo_workspace}:")
    assert result.output.endswith(f": {message}\n")


def test_a_missing_trait_column(demo_workspace: Path) -> None:
    set_segmentation(demo_workspace, "k = 4", 'k = 4\ntraits = ["income", "Fresh"]')
    result = invoke("segment", "fit", "-c", str(demo_workspace), "--at", AT)

    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: segmentation: customers have no column(s) ['Fresh']; their columns are: "
        "'customer_id', 'email', "
    )


def test_config_features_traits_and_categorical(demo_workspace: Path) -> None:
    set_segmentation(
        demo_workspace,
        'model = "kmeans"\nk = 4\nfeatures = ["recency", "frequency", "monetary"]',
        'model = "gmm"\nk = 4\nfeatures = ["recency", "frequency", "monetary", "category_shares"]\n'
        'traits = ["income", "age"]\ncategorical = { gender = "onehot" }\n'
        'preprocessing = { missing = "median", outliers = "clip", scaling = "robust" }',
    )
    assert invoke("segment", "fit", "-c", str(demo_workspace), "--at", AT).exit_code == 0
    data = json.loads(
        invoke("segment", "report", "-c", str(demo_workspace), "--format", "json").output
    )

    assert data["model"]["algorithm"] == "gmm"
    features = data["model"]["features"]
    assert features[:3] == ["recency", "frequency", "monetary"]
    assert "share_coffee" in features
    assert features[-3:] == ["income", "age", "gender"]
    assert data["preprocessing"]["scaling"] == "robust"
    assert data["preprocessing"]["outlier_action"] == "clip"
    assert "share_tea" in data["segments"][0]["means"]
