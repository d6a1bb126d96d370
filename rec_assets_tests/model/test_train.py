"""The training loop: it learns, cold titles are ranked from metadata, it is deterministic, it reports."""

import copy
import math

import numpy as np
import pytest
import torch

from rec_assets.model.checkpoint import scores
from rec_assets.model.data import make_synthetic
from rec_assets.model.train import TrainConfig, resolve_device, train, train_variant
from rec_assets.model.variants import build_model

SMALL = dict(embedding_dim=32, modality_dim=16, attention_dim=16, history_dim=16, user_hidden_dim=32, history_len=20)


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """The test machine is shared: spinning OpenMP threads under contention slow small models many times over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def problem():
    return make_synthetic(n_users=300, n_titles=200, n_cold=40, seed=0)


def base_rate_loss(rate: int) -> float:
    """The BCE of a constant prediction of 1 / (1 + rate): what a model learns without any personalisation."""
    p = 1.0 / (1 + rate)
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def cold_title_auc(score_matrix: np.ndarray, problem) -> float:
    """Mean over users of P(score of the cold title the user watched in Y' > score of another cold title)."""
    labels = problem.score_positives
    cold = problem.cold_rows
    is_cold = np.isin(labels.title_rows, cold)
    per_user = [(score_matrix[u, t] > score_matrix[u, cold[cold != t]]).mean()
                for u, t in zip(labels.user_rows[is_cold], labels.title_rows[is_cold])]
    return float(np.mean(per_user))


def test_training_learns_and_ranks_never_seen_cold_titles_from_metadata(problem):
    config = TrainConfig(epochs=10, batch_size=64, patience=3, seed=0, history_positives=0)  # Y positives only
    records = []
    result = train_variant("attention_no_id", problem.train_items, problem.train_users, problem.train_positives,
                           config, on_progress=records.append, **SMALL)
    assert not np.isin(problem.train_positives.title_rows, problem.cold_rows).any()  # cold titles never trained on
    assert result.best_val_loss < 0.9 * base_rate_loss(20)  # beyond the base rate, not just a learned bias
    assert result.train_loss[-1] < 0.6 * result.train_loss[0]
    assert result.best_val_loss < 0.25 * result.initial_val_loss
    auc = cold_title_auc(scores(result.model, problem.score_users, problem.score_items), problem)
    assert auc > 0.65, auc
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == list(range(result.epochs_run))
    assert all(r["val_loss"] is not None and r["examples_per_second"] > 0 for r in epochs)
    assert result.examples_seen == result.epochs_run * int(0.9 * 300) * 5 * 21
    assert 0 < result.compute_share < 1 and result.parameter_count == result.model.parameter_count()


def test_an_untrained_model_ranks_cold_titles_near_chance(problem):
    """The control for the test above: the AUC threshold is not met without learning."""
    config = TrainConfig(epochs=1, batch_size=64, learning_rate=1e-9, validation_share=0.0)
    result = train_variant("attention_no_id", problem.train_items, problem.train_users, problem.train_positives,
                           config, **SMALL)
    auc = cold_title_auc(scores(result.model, problem.score_users, problem.score_items), problem)
    assert 0.35 < auc < 0.65


def test_same_seed_same_weights_bit_for_bit(problem):
    def weights(seed):
        config = TrainConfig(epochs=2, batch_size=128, negative_rate=5, seed=seed)
        model = train_variant("attention_id", problem.train_items, problem.train_users, problem.train_positives,
                              config, **SMALL).model
        return list(model.state_dict().values())

    first, second, other = weights(7), weights(7), weights(8)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_early_stopping_keeps_the_best_validation_epoch(problem):
    # a learning rate this high makes the validation loss rise after the first epochs
    config = TrainConfig(epochs=12, batch_size=32, negative_rate=3, learning_rate=0.03, patience=1)
    result = train_variant("ncf_extension", problem.train_items, problem.train_users, problem.train_positives,
                           config, **SMALL)
    assert result.best_val_loss == min(result.val_loss)
    assert result.best_epoch == int(np.argmin(result.val_loss))
    assert result.epochs_run == len(result.val_loss)
    assert result.epochs_run < 12 and result.epochs_run == result.best_epoch + 2


def test_long_epochs_report_progress_between_epochs(problem):
    records = []
    config = TrainConfig(epochs=1, batch_size=64, negative_rate=2, progress_every_s=0.0)
    result = train_variant("categorical", problem.train_items, problem.train_users, problem.train_positives, config,
                           on_progress=records.append, **SMALL)
    steps = [r for r in records if r["event"] == "progress"]
    assert len(steps) >= 10 and records[-1]["event"] == "epoch"
    assert [r["step"] for r in steps] == list(range(1, len(steps) + 1))
    assert all(r["train_loss"] > 0 and r["examples_per_second"] > 0 for r in steps)
    assert result.history == records


def test_training_refuses_a_model_built_for_other_data(problem):
    other = make_synthetic(n_users=30, n_titles=20, n_cold=4, seed=9)
    model = build_model("attention_id", other.train_items, other.train_users, **SMALL)
    with pytest.raises(ValueError, match="vocabularies"):
        train(model, problem.train_items, problem.train_users, problem.train_positives, TrainConfig(epochs=1))


def test_device_auto_picks_cuda_only_when_present():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")


def test_config_rejects_a_negative_rate_outside_1_to_30():
    with pytest.raises(ValueError, match="negative_rate"):
        TrainConfig(negative_rate=31)


def unnormalised(problem):
    """The synthetic training features rescaled the way the real ones are: cover art with a large shared offset
    and scale (pooled ResNet activations), synopsis left L2-scale."""
    items = problem.train_items
    rng = np.random.default_rng(0)
    offset = rng.uniform(0, 80, size=items.cover_art.shape[1]).astype(np.float32)
    scaled = copy.copy(items)
    scaled.cover_art = (items.cover_art * 40.0 + offset).astype(np.float32)
    return scaled


@pytest.mark.parametrize("variant", ["attention_id", "concat_no_id", "cover_art", "categorical"])
def test_initial_logits_are_small_for_large_magnitude_inputs(variant, problem):
    items = unnormalised(problem)
    assert np.abs(items.cover_art).mean() > 30
    model = build_model(variant, items, problem.train_users, embedding_dim=512)
    logits = torch.from_numpy(scores(model, problem.train_users, items)).logit()
    assert logits.abs().mean() < 2.0, float(logits.abs().mean())


def test_loss_decreases_on_large_magnitude_inputs(problem):
    items = unnormalised(problem)
    config = TrainConfig(epochs=6, batch_size=64, patience=6, seed=0)
    result = train_variant("concat_id", items, problem.train_users, problem.train_positives, config,
                           **{**SMALL, "embedding_dim": 128})
    assert result.initial_val_loss < 1.5
    assert result.best_val_loss < base_rate_loss(20)
    assert max(result.val_loss) < 2 * result.initial_val_loss  # no blow-up along the way


def test_history_windows_cut_each_history_into_an_earlier_history_and_its_next_titles():
    from rec_assets.model.data import UserData
    from rec_assets.model.train import history_windows
    users = UserData(user_ids=np.array([10, 11, 12]), feature_codes=np.zeros((3, 0), dtype=np.int64),
                     feature_cardinalities=[], history_offsets=np.array([0, 5, 7, 8]),
                     history_items=np.array([1, 2, 3, 4, 5, 6, 7, 8]))
    windows = history_windows(users, eligible=np.array([0, 1, 2]), k=2, cuts=2)
    (first, rows1, u1, t1), (second, rows2, u2, t2) = windows
    assert rows1.tolist() == [0] and u1.tolist() == [0, 0] and t1.tolist() == [4, 5]  # user 1 has 2: none left
    assert first.history_offsets.tolist() == [0, 3, 3, 3] and first.history_items.tolist() == [1, 2, 3]
    assert rows2.tolist() == [0] and t2.tolist() == [2, 3] and second.history_items.tolist() == [1]
    assert history_windows(users, eligible=np.array([1, 2]), k=2, cuts=1) == []


def test_history_positives_add_examples_and_keep_training_deterministic(problem):
    def run(k):
        config = TrainConfig(epochs=1, batch_size=128, negative_rate=5, seed=0, history_positives=k, history_cuts=2)
        return train_variant("attention_no_id", problem.train_items, problem.train_users, problem.train_positives,
                             config, **SMALL)
    plain, extra, again = run(0), run(2), run(2)
    train_users = int(0.9 * 300)
    assert plain.examples_seen == train_users * 5 * 6
    # every training user with a history longer than 2 (resp. 4) titles adds 2 positives per cut
    assert plain.examples_seen < extra.examples_seen <= plain.examples_seen + 300 * 2 * 2 * 6
    for a, b in zip(extra.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
