"""Personalization models on real data: recommendations (demo shop, CDNOW), response propensity
(Customer Personality) and uplift (the demo shop's known heterogeneous effect)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaigns.compose import compose
from campaigns.conditions import Condition
from campaigns.config.schema import CampaignConfig, RecommendationsConfig
from campaigns.personalization import (
    PersonalizationError,
    RecommenderSettings,
    evaluate_recommenders,
    fit_recommender,
    recommend_for,
    save_model,
    simulate_experiment,
    train_propensity,
    train_uplift,
    with_scores,
)
from campaigns.personalization.for_templates import RunRecommendations
from campaigns.personalization.recommend_content import content_similarity
from campaigns.personalization.targeting import select_targets
from campaigns.personalization.uplift import curve_areas, qini_curve
from campaigns.planner import CampaignPlan
from segmentation.features import rfm_features
from store.engine import open_store
from store.frames import ShopData
from store.sources.demo import generate_demo_shop, response_probability
from templates import make_environment

END = datetime(2026, 11, 23)


@pytest.fixture(scope="module")
def shop() -> ShopData:
    """The demo shop with 3,000 customers (about 32,000 order lines over 200 products)."""
    return generate_demo_shop(3000, 7, END)


# ------------------------------------------------------------------------------ recommendations


def test_each_task_beats_its_baseline_on_the_demo_shop(shop: ShopData) -> None:
    result = evaluate_recommenders(shop.transactions, shop.products, k=10, test_days=30, splits=1)

    # Measured on the cutoff 2026-10-23: replenish (740 customers) NDCG@10 repeat 0.1239,
    # rebuy 0.0879, popularity 0.1170; discover (692 customers) EASE 0.1250, CF 0.1193,
    # popularity 0.1171, random 0.0326. The demo shop draws products by its groups' taste times
    # one shop-wide popularity, with no personal habit to learn: popularity is a strong
    # baseline, and for discover the models only match it (the validation keeps CF).
    replenish, discover = result.task("replenish").latest, result.task("discover").latest
    assert (replenish.customers, discover.customers) == (740, 692)
    repeat = replenish.score("repeat")
    assert repeat.difference is not None
    assert repeat.difference["ndcg"].low > 0
    assert repeat.metrics["ndcg"].value > replenish.score("popular").metrics["ndcg"].value
    assert discover.tuning.method == "cf"
    popular = discover.score("popular").metrics["ndcg"]
    for method in ("cf", "ease"):
        score = discover.score(method)
        assert score.difference is not None
        assert score.metrics["ndcg"].value > popular.value
        assert score.difference["ndcg"].high > 0 > score.difference["ndcg"].low  # no better
    random = discover.score("random").metrics["precision"].value
    assert discover.score("popular").metrics["precision"].value > 3 * random
    assert result.note.startswith("321 customers who bought in the latest test window")


def _tiny_shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    products = pd.DataFrame(
        {
            "product_id": ["A", "B", "C", "D"],
            "name": ["Kenyan Blend 250g", "Kenyan Blend 500g", "Ceramic Mug", "Oat Cookies"],
            "category": ["Coffee", "Coffee", "Accessories", "Snacks"],
            "price": [8.49, 14.99, 12.0, 3.49],
        }
    )
    rows = [
        # (customer, product, days before END)
        ("c1", "A", 10),
        ("c2", "A", 200),
        ("c2", "B", 200),
        ("c3", "A", 300),
        ("c3", "B", 300),
        ("c3", "C", 300),
        ("c4", "D", 100),
        ("c5", "D", 100),
    ]
    transactions = pd.DataFrame(
        {
            "invoice": [f"I{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "product_id": [r[1] for r in rows],
            "quantity": 1,
            "unit_price": 5.0,
            "invoiced_at": [END - pd.Timedelta(days=r[2]) for r in rows],
        }
    )
    return transactions, products


def test_discover_never_recommends_a_past_purchase_and_replenish_does() -> None:
    transactions, products = _tiny_shop()
    customers = ["c1", "c2", "c3", "c4", "c5"]
    settings = RecommenderSettings(min_items=1)
    model = fit_recommender(transactions, products, customers, END, settings=settings)

    picks = recommend_for(model, ["c1"], 4, "cf")["c1"]

    # c1 bought A; buyers of A also bought B, then C; D fills from the best sellers.
    assert [p["id"] for p in picks] == ["B", "C", "D"]
    # c2 bought A and B 200 days ago: a discover recommendation never names them again.
    assert [p["id"] for p in recommend_for(model, ["c2"], 4, "cf")["c2"]] == ["C", "D"]
    # Replenish starts from what c2 bought, then what its buyers also bought.
    again = recommend_for(model, ["c2"], 3, "repeat", "replenish")["c2"]
    assert [p["id"] for p in again][:2] in (["A", "B"], ["B", "A"])
    assert [p["id"] for p in again][2] == "C"

    # With exclude_days = 90, only the last 90 days' purchases are excluded.
    recent = RecommenderSettings(min_items=1, recent_days=90)
    model = fit_recommender(transactions, products, customers, END, settings=recent)
    assert "A" in [p["id"] for p in recommend_for(model, ["c2"], 4, "cf")["c2"]]


def test_new_and_thin_customers_get_the_popular_list_of_their_segment() -> None:
    transactions, products = _tiny_shop()
    segments = pd.Series({"c1": 1, "c2": 1, "c3": 1, "c4": 2, "c5": 2, "c6": 2})
    model = fit_recommender(
        transactions, products, ["c1", "c2", "c3", "c4", "c5", "c6"], END, segments
    )

    picks = recommend_for(model, ["c6", "stranger"], 2, "blend")

    # c6 has no purchase: segment 2 bought D. A stranger gets the whole shop's best sellers.
    assert [p["id"] for p in picks["c6"]] == ["D", "A"]
    assert [p["id"] for p in picks["stranger"]] == ["A", "B"]
    assert picks["c6"][0] == {"id": "D", "name": "Oat Cookies", "category": "Snacks", "price": 3.49}


def test_content_similarity_pairs_products_by_name_and_category(shop: ShopData) -> None:
    similarity = content_similarity(shop.products, neighbours=5)
    categories = shop.products["category"].to_numpy()

    # Each product's five nearest neighbours share its category.
    rows, cols = similarity.nonzero()
    assert np.mean(categories[rows] == categories[cols]) > 0.95


def test_unknown_method_is_refused(shop: ShopData) -> None:
    transactions, products = _tiny_shop()
    model = fit_recommender(transactions, products, ["c1"], END)

    with pytest.raises(PersonalizationError) as caught:
        recommend_for(model, ["c1"], 3, "magic")  # type: ignore[arg-type]

    assert str(caught.value) == (
        "unknown recommendation method 'magic' for purpose 'discover'; expected one of cf, "
        "ease, content, blend, popular"
    )


@pytest.mark.shared_data
def test_cdnow_says_why_it_cannot_evaluate_recommendations(shared_data: Path) -> None:
    """CDNOW's log has no product ids: it says when customers bought, not what."""
    raw = pd.read_csv(
        shared_data / "cdnow" / "CDNOW_master.txt", sep=r"\s+", dtype={"customer_id": str}
    )
    transactions = pd.DataFrame(
        {
            "invoice": np.arange(len(raw)).astype(str),
            "customer_id": raw["customer_id"],
            "product_id": "unknown",
            "quantity": raw["number_of_cds"],
            "unit_price": raw["dollar_value"] / raw["number_of_cds"].clip(lower=1),
            "invoiced_at": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
        }
    )
    products = pd.DataFrame(
        {"product_id": ["unknown"], "name": ["unknown"], "category": [None], "price": [None]}
    )

    result = evaluate_recommenders(transactions, products, k=10, test_days=90)

    assert result.tasks == []
    assert result.note == (
        "the transactions carry a single product id, so they say when customers bought but not "
        "what: item recommendations cannot be evaluated. Timing is all there is: 3,317 of the "
        "23,570 customers who bought before the cutoff (14.1%) bought again in the last 90 days."
    )


# ----------------------------------------------------------------------------------- propensity


@pytest.fixture(scope="module")
def personality() -> pd.DataFrame:
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "customer_personality"
    if not folder.is_dir():
        pytest.skip(f"shared datasets not found at {folder}")
    return pd.read_csv(folder / "marketing_campaign.csv", sep="\t")


@pytest.mark.shared_data
def test_propensity_on_customer_personality_responses(personality: pd.DataFrame) -> None:
    model = train_propensity(personality, "Response", folds=3)
    report = model.report
    held = report["held_out"]

    # 334 of 2,240 customers (14.9%) responded. Measured with 3 folds: CV ROC AUC logistic
    # regression 0.87, gradient boosting 0.88; held out (560): ROC AUC 0.90, average precision
    # 0.65, top decile lift 4.6.
    assert report["responders"] == 334
    assert report["chosen"] in ("logistic_regression", "gradient_boosting")
    assert min(cv["mean"] for cv in report["cv_roc_auc"].values()) > 0.83
    assert held["rows"] == 560
    assert held["roc_auc"] > 0.86
    assert held["average_precision"] > 0.5 > held["base_rate"]
    assert held["lift_by_decile"][0]["lift"] > 3.5
    # Balanced class weights, then recalibrated: the mean score is near the true rate.
    assert abs(held["mean_score"] - held["base_rate"]) < 0.03
    assert "ID" not in report["features"]
    assert "Response" not in report["features"]


def test_propensity_errors_say_what_is_wrong() -> None:
    frame = pd.DataFrame({"x": np.arange(20.0), "y": [1] * 2 + [0] * 18})

    with pytest.raises(PersonalizationError) as missing:
        train_propensity(frame, "Response")
    with pytest.raises(PersonalizationError) as rare:
        train_propensity(frame, "y")

    assert str(missing.value) == "no column 'Response' to learn from; the columns are: x, y"
    assert str(rare.value) == (
        "'y' has 2 responders and 18 non-responders; each class needs at least 5 to cross-validate"
    )


def _demo_table(customers: int, seed: int) -> tuple[ShopData, pd.DataFrame]:
    demo = generate_demo_shop(customers, seed, END)
    table = demo.customers.set_index("customer_id", drop=False).rename_axis(None)
    return demo, table.join(rfm_features(demo.transactions, demo.customers, END))


def test_propensity_becomes_a_customer_column_for_conditions(tmp_path: Path) -> None:
    demo, table = _demo_table(3000, 3)
    experiment = simulate_experiment(demo, table, "discount", seed=2)
    sent = experiment[experiment["treated"] == 1].drop(columns=["treated", "true_uplift"])
    model = train_propensity(sent, "converted", folds=3)
    # 1,500 messaged customers, 127 responders: CV AUC 0.539 [0.480, 0.592] does not beat
    # chance, so it is stored as rejected; accepted here, runs score with it.
    assert model.report["rejected"]
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    save_model(engine, "propensity", model, model.report, {"accepted": True}, END)

    scored = with_scores(engine, table)
    engine.dispose()

    assert scored["propensity"].between(0, 1).all()
    likely = Condition.parse("propensity > 0.1").evaluate(scored, END).to_numpy()
    # Those the condition picks would truly convert more often when messaged (the demo's
    # response model: champions and bargain hunters 12%, lapsed 4%).
    truth = response_probability(scored, "discount")
    assert 0 < likely.sum() < len(scored)
    assert truth[likely].mean() > truth[~likely].mean() + 0.02


def test_a_model_no_better_than_chance_is_rejected_and_not_scored(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    noise = pd.DataFrame(
        {
            "a": rng.normal(size=1500),
            "b": rng.normal(size=1500),
            "responded": (rng.random(1500) < 0.15).astype(int),
        }
    )
    model = train_propensity(noise, "responded", folds=3)
    chance = model.report["chance"]
    assert chance["metric"] == "cross-validated ROC AUC"
    assert chance["ci"][0] <= 0.5
    assert model.report["rejected"] is True
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    customers = noise.drop(columns=["responded"])
    save_model(engine, "propensity", model, model.report, {"accepted": False}, END)
    # Not used: the score column exists (conditions stay valid) but scores no one.
    assert with_scores(engine, customers)["propensity"].isna().all()
    # Accepted explicitly (a newer version), it scores.
    save_model(engine, "propensity", model, model.report, {"accepted": True}, END)
    assert with_scores(engine, customers)["propensity"].between(0, 1).all()
    engine.dispose()


# --------------------------------------------------------------------------------------- uplift


def test_uplift_recovers_who_the_discount_moves() -> None:
    demo, table = _demo_table(20_000, 11)
    experiment = simulate_experiment(demo, table, "discount", seed=5)

    model = train_uplift(experiment, seed=0)
    report = model.report

    # The true effect of the discount against no message: bargain hunters +7.2 points, loyal
    # +3.6, new +3.0, champions and lapsed +2.4.
    by_group = report["mean_uplift_by_group"]
    assert max(by_group, key=by_group.get) == "bargain_hunters"
    assert by_group["bargain_hunters"] > by_group["champions"] + 0.015
    chosen = report["held_out"][report["chosen"]]
    assert chosen["qini_coefficient"] > 0
    truth = report["targeting"]["true_per_1000"]
    # Messaging the top 30% by predicted uplift brings more conversions per message than
    # messaging everyone.
    assert truth["uplift"] > truth["everyone"] + 5


def test_qini_curve_of_a_perfect_ranking() -> None:
    # Four treated converters first, then treated non-converters and held-out customers.
    treated = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1])
    converted = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    score = np.linspace(1, 0, 12)

    curve = qini_curve(score, treated, converted, points=4)
    areas = curve_areas(curve, 12)

    assert [p["qini"] for p in curve] == [0.0, 3.0, 4.0, 4.0, 4.0]
    assert areas["qini_coefficient"] > 0


def test_run_recommendations_follow_the_campaign_option(shop: ShopData) -> None:
    segments = pd.Series(1, index=shop.customers["customer_id"])
    run = RunRecommendations(shop, segments, END)
    ids = list(shop.customers["customer_id"][:50])

    shown = run.for_campaign(RecommendationsConfig(count=3, method="cf"), ids)
    again = run.for_campaign(RecommendationsConfig(count=2, method="cf"), ids)
    reorder = run.for_campaign(RecommendationsConfig(purpose="replenish", count=3), ids)
    fixed = run.for_campaign(
        RecommendationsConfig(purpose="replenish", method="repeat", count=3), ids
    )

    assert run.for_campaign(None, ids) == {}
    assert len(run._models) == 3  # the two discover campaigns share one fitted model
    assert all(len(products) == 3 for products in shown.values())
    assert all(len(products) == 2 for products in again.values())
    bought = shop.transactions.groupby("customer_id")["product_id"].agg(set)
    for customer, products in shown.items():
        assert not {p["id"] for p in products} & bought.get(customer, set())

    # Replenish may name what customers bought before. With the default weights most picks are
    # past purchases; tuned on the demo shop (whose customers do not favour their own past
    # products) the neighbours' products weigh more, and fewer are.
    def repeats(shown: dict[str, list[dict[str, object]]]) -> float:
        return float(
            np.mean([p["id"] in bought.get(c, set()) for c, ps in shown.items() for p in ps])
        )

    assert repeats(fixed) > 0.5
    assert 0 < repeats(reorder) < repeats(fixed)


def test_uplift_skips_those_who_buy_anyway() -> None:
    """Discount against the plain message: bargain hunters gain 6 points, champions nothing
    (they buy anyway). Targeting by uplift beats targeting the likeliest buyers."""
    demo, table = _demo_table(20_000, 11)
    experiment = simulate_experiment(demo, table, "discount", seed=5, control="control")

    report = train_uplift(experiment, seed=0).report

    # Measured: mean predicted uplift bargain hunters +0.057, new +0.044, loyal +0.036, lapsed
    # +0.022, champions +0.013; true incremental conversions per 1,000 messages to the top 30%:
    # by uplift 34.2, by propensity 32.3, everyone 26.3.
    by_group = report["mean_uplift_by_group"]
    assert max(by_group, key=by_group.get) == "bargain_hunters"
    assert min(by_group, key=by_group.get) == "champions"
    truth = report["targeting"]["true_per_1000"]
    assert truth["uplift"] > truth["propensity"] > truth["everyone"]


def test_targets_by_expected_value_skip_the_put_off_and_respect_the_budget() -> None:
    uplift = pd.Series([0.05, -0.02, 0.01, 0.08, 0.0], index=["a", "b", "c", "d", "e"])
    order_value = pd.Series([20.0, 50.0, 100.0, 10.0, 30.0], index=uplift.index)

    # Expected added revenue: a 1.0, b -1.0, c 1.0, d 0.8, e 0.
    assert list(select_targets(uplift, order_value)) == ["a", "c", "d"]
    assert list(select_targets(uplift, order_value, top=2)) == ["a", "c"]
    assert list(select_targets(uplift, share=0.4)) == ["d", "a"]
    assert list(select_targets(uplift, order_value, budget=1.9, cost=0.85)) == ["a", "c"]
    with pytest.raises(PersonalizationError) as caught:
        select_targets(uplift, budget=100.0)
    assert str(caught.value) == "a budget needs the cost of one message (cost > 0)"


def test_templates_list_the_campaigns_recommendations(shop: ShopData) -> None:
    """compose renders ``recommendations`` per customer when the campaign asks for them."""
    customers = shop.customers.set_index("customer_id", drop=False).rename_axis(None)
    customers = customers.assign(segment_id=1)
    ids = customers.index[:3]
    campaign = CampaignConfig(
        segments=["*"],
        trigger={"type": "once", "at": END},
        channel="export",
        template="recommended",
        subject="For you",
        recommendations=RecommendationsConfig(count=2, method="blend"),
    )
    selected = pd.DataFrame({"customer_id": ids, "segment_id": 1, "window": "w"})
    plan = CampaignPlan("picks", campaign, "due", "w", selected, selected)
    env = make_environment(Path(__file__).parent / "templates")
    run = RunRecommendations(shop, customers["segment_id"], END)

    messages = compose(
        plan, customers, {1: {"id": 1}}, env, END, 1, "https://x", set(), recommendations=run
    )

    expected = run.for_campaign(campaign.recommendations, list(ids))
    for customer, body in zip(messages["customer_id"], messages["body_text"], strict=True):
        names = [p["name"] for p in expected[customer]]
        assert len(names) == 2
        assert all(f"- {name} (" in body for name in names)
        assert "(discover)" in body  # the template shows campaign.purpose
