"""The report as data (strict JSON) and as a self-contained HTML page."""

from __future__ import annotations

import json
import re
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from segmentation import Segmenter
from segmentation.html import render_html
from segmentation.report import report_data
from tests.test_segmentation_model import synthetic_rfm


def profiles(segmenter: Segmenter) -> list[dict[str, object]]:
    return [p.__dict__ for p in segmenter.profiles_]


def test_report_data_is_strict_json_without_spend_columns() -> None:
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=["a", "b", "c"])
    segmenter = Segmenter(k=3, features=("a", "b", "c"), refits=1).fit(X)
    data = report_data(segmenter, profiles(segmenter), 7, datetime(2026, 1, 2))

    # No spend column: revenue shares are undefined, and come out as null, not NaN.
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["segments"][0]["revenue_share"] is None
    assert data["model"] == {
        "version": 7,
        "algorithm": "kmeans",
        "k": 3,
        "features": ["a", "b", "c"],
        "fitted_at": "2026-01-02T00:00:00",
        "k_reason": "k = 3 is set in the configuration",
        "search_sample": 300,
        "new_segments": [],
    }
    assert [s["size"] for s in data["segments"]] == [p.size for p in segmenter.profiles_]
    assert data["k_search"][0]["k"] == 3
    assert data["migration"] is None


@pytest.mark.parametrize("model", ["kmeans", "rfm"])
def test_html_page_is_self_contained(model: str) -> None:
    X, _ = synthetic_rfm()
    segmenter = Segmenter(k=4, model=model, refits=0).fit(X)
    data = report_data(segmenter, profiles(segmenter), 1, None)
    page = render_html(segmenter, data, X, tsne_sample=60)

    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,", page)
    # k is fixed: no curve over k (six panels of one dot each) is drawn; the page says why.
    assert images == ["Segment sizes", "Profile heatmap (z-scores)", "PCA", "t-SNE"]
    assert f"k = {segmenter.k_} was fixed, so there is no curve over k to draw" in page
    assert "http" not in page
    assert page.count("<tr>") >= segmenter.k_ + 2  # profiles and metrics tables
    assert "Low spend, lapsed, occasional" in page or "Hibernating" in page


def test_quality_by_k_is_drawn_when_several_k_were_tried() -> None:
    X, _ = synthetic_rfm()
    segmenter = Segmenter(k="auto", k_range=(2, 4), refits=0).fit(X)
    data = report_data(segmenter, profiles(segmenter), 1, None)
    page = render_html(segmenter, data, X, tsne_sample=60)
    assert "alt='Quality metrics by k'" in page
    assert "was fixed" not in page


def test_heatmap_labels_contrast_with_their_cells() -> None:
    from matplotlib import colormaps

    from segmentation.html import _luminance

    cmap = colormaps["RdBu_r"]
    assert _luminance(cmap(1.0)) < 0.5  # dark red: white text
    assert _luminance(cmap(0.0)) < 0.5  # dark blue: white text
    assert _luminance(cmap(0.5)) > 0.5  # near white: black text
