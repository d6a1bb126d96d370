"""The training loop: it learns, cold titles are ranked from metadata, it is deterministic, it reports."""

import copy
import math

import numpy as np
import pytest
import torch

from rec_assets.model.checkpoint import scores
from rec_assets.model.data import Interactions, UserData, item_tensors, lookup, make_synthetic, user_tensors
from rec_assets.model.examples import (
    ColdColumns, Examples, assemble_batch, draw_per_user, drop_item_inputs, history_index, log_expected_draws,
    per_user_cap_within,
)
from rec_assets.model.train import (
    TrainConfig, epoch_draw_per_user, prepare_training, resolve_device, train, train_variant,
)
from rec_assets.model.variants import build_model

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # conftest.py

SMALL = dict(embedding_dim=32, modality_dim=16, attention_dim=16, history_dim=16, user_hidden_dim=32, history_len=20)


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
    # the paper's setup: Y positives only, BCE against uniform negatives
    config = TrainConfig(epochs=10, batch_size=64, patience=3, seed=0, loss="bce", next_watch_per_user=0,
                         id_dropout=0.0)
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
    config = TrainConfig(epochs=6, batch_size=64, patience=6, seed=0, loss="bce")  # the BCE scale is known
    result = train_variant("concat_id", items, problem.train_users, problem.train_positives, config,
                           **{**SMALL, "embedding_dim": 128})
    assert result.initial_val_loss < 1.5
    assert result.best_val_loss < base_rate_loss(20)
    assert max(result.val_loss) < 2 * result.initial_val_loss  # no blow-up along the way


def hand_made_users():
    """Three users' X (title rows, oldest first); user 12 watched one title."""
    return UserData(user_ids=np.array([10, 11, 12]), feature_codes=np.zeros((3, 0), dtype=np.int64),
                    feature_cardinalities=[], history_offsets=np.array([0, 5, 7, 8]),
                    history_items=np.array([1, 2, 3, 4, 5, 6, 7, 8]))


def hand_made_items(n=10):
    return make_synthetic(n_users=5, n_titles=n, n_cold=1, seed=0).train_items


def test_the_history_index_reads_each_example_against_the_right_watches():
    users, items = hand_made_users(), hand_made_items()
    vocab = np.sort(items.title_ids)
    index = history_index(users, items, vocab, np.sort(users.user_ids), 4, torch.device("cpu"))
    row = {int(t): int(r) for r, t in enumerate(vocab)}  # the history holds vocabulary rows, newest first
    rows = [[row[int(items.title_ids[t])] for t in ts] + [-1] * (4 - len(ts)) for ts in ([3, 2, 1], [5, 4, 3, 2],
                                                                                          [5, 4, 2, 1])]
    owners, cuts, skips = torch.tensor([0, 0, 0]), torch.tensor([3, 5, 5]), torch.tensor([-1, -1, 2])
    assert index.users(owners, cuts, skips).history.tolist() == rows  # a prefix; the last 4; all but position 2
    full = user_tensors(users, items, vocab, np.sort(users.user_ids), 4)
    everyone = index.users(torch.arange(3), torch.from_numpy(index.lengths), torch.full((3,), -1))
    assert torch.equal(everyone.history, full.history)  # a Y label reads all of X, as scoring does


def test_examples_come_from_x_and_y_only_and_never_read_their_own_title():
    """The hand-made event set: X and Y of the training phase go in; Y' (the scoring week's labels) is a separate
    set the loop is never given, and no example holds one of its pairs."""
    users, items = hand_made_users(), hand_made_items()
    y = Interactions(np.array([0, 1, 2]), np.array([9, 9, 0]))
    y_prime = {(0, 7), (1, 0), (2, 3)}  # watched in the scoring week: never trained on
    x_pairs = {(u, int(t)) for u in range(3)
               for t in users.history_items[users.history_offsets[u]:users.history_offsets[u + 1]]}
    model = build_model("attention_no_id", items, users, **SMALL)
    for view in ("next_watch", "leave_one_out"):
        config = TrainConfig(validation_share=0.0, history_view=view, next_watch_per_user=-1, loss="bce",
                             negative_rate=1)
        setup = prepare_training(model, items, users, y, config, torch.device("cpu"))
        examples = Examples.concat([setup.labels, setup.next_watch])
        pairs = set(zip(examples.owners.tolist(), examples.titles.tolist()))
        assert pairs <= x_pairs | set(zip(y.user_rows.tolist(), y.title_rows.tolist())) and not pairs & y_prime
        assert len(setup.next_watch) == 4 + 1  # every watch of X but each user's first
        history = setup.index.users(torch.from_numpy(examples.owners), torch.from_numpy(examples.cuts),
                                    torch.from_numpy(examples.skips)).history.numpy()
        target_rows = lookup(np.sort(items.title_ids), items.title_ids[examples.titles])
        from_x = [not (h == target_rows[i]).any() for i, h in enumerate(history) if i >= len(setup.labels)]
        assert all(from_x)  # an example from X never reads its own title


def test_only_each_users_last_watches_are_examples_when_next_watch_recent_is_set(problem):
    """next_watch_recent=N keeps the examples of each user's last N watches of X (positions counted from the
    end); with leave-one-out they still read every other watch of X."""
    users, items = problem.train_users, problem.train_items
    model = build_model("attention_no_id", items, users, **SMALL)
    every = prepare_training(model, items, users, problem.train_positives,
                             TrainConfig(next_watch_recent=0), torch.device("cpu")).next_watch
    last = prepare_training(model, items, users, problem.train_positives,
                            TrainConfig(next_watch_recent=3), torch.device("cpu")).next_watch
    lengths = np.diff(users.history_offsets)
    assert np.bincount(last.owners).max() == 3 and len(last) < len(every)
    assert (last.skips >= lengths[last.owners] - 3).all()  # the position left out is one of the last three
    assert (last.cuts == lengths[last.owners]).all()  # read against the whole of X but that watch
    kept = set(zip(last.owners.tolist(), last.skips.tolist()))
    assert kept == {(o, k) for o, k in zip(every.owners.tolist(), every.skips.tolist())
                    if k >= lengths[o] - 3}
    with pytest.raises(ValueError, match="next_watch_recent"):
        TrainConfig(next_watch_recent=-1)


def test_next_watch_examples_are_drawn_per_user_and_epoch_deterministically(problem):
    def run(per_user, seed=0):
        config = TrainConfig(epochs=1, batch_size=128, seed=seed, next_watch_per_user=per_user)
        return train_variant("attention_no_id", problem.train_items, problem.train_users, problem.train_positives,
                             config, **SMALL)
    plain, extra, again = run(0), run(3), run(3)
    train_users = int(0.9 * 300)
    assert plain.examples_seen == train_users * 5  # softmax: one term per example
    # every training user with a history adds 3 examples (the synthetic histories hold 20 watches)
    # (the 5 users with an empty history, if they are training users, add none)
    assert plain.examples_seen + 3 * (train_users - 5) <= extra.examples_seen <= plain.examples_seen + 3 * train_users
    for a, b in zip(extra.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)


def test_an_epoch_draws_at_most_max_history_examples_from_x_in_equal_shares_per_user(problem):
    config = TrainConfig(epochs=1, batch_size=128, next_watch_per_user=-1, max_history_examples=600)
    result = train_variant("attention_no_id", problem.train_items, problem.train_users, problem.train_positives,
                           config, **SMALL)
    labels = int(0.9 * 300) * 5
    # 265+ training users with 19 candidates each: 600 allows 2 per user (3 would be 795+)
    assert result.history[-1]["history_examples_per_user"] == 2
    assert labels + 2 * (int(0.9 * 300) - 5) <= result.examples_seen <= labels + 600


def test_the_per_user_cap_is_the_largest_that_fits_the_budget():
    owners = np.repeat([0, 1, 2], [5, 1, 3])  # 5, 1 and 3 candidates
    assert per_user_cap_within(owners, 9) == -1  # everything fits
    assert per_user_cap_within(owners, 0) == -1  # no budget: no cap
    assert per_user_cap_within(owners, 8) == 4  # 4 + 1 + 3
    assert per_user_cap_within(owners, 6) == 2  # 2 + 1 + 2 (3 would take 7)
    assert per_user_cap_within(owners, 2) == 1  # never below one: the epoch then subsamples uniformly


def test_the_epoch_draw_is_the_smaller_of_the_setting_and_the_budget_cap():
    candidates = Examples(np.repeat([0, 1, 2], [5, 1, 3]), np.arange(9), np.full(9, -1), np.arange(9))
    assert epoch_draw_per_user(TrainConfig(next_watch_per_user=-1, max_history_examples=6), candidates) == 2
    assert epoch_draw_per_user(TrainConfig(next_watch_per_user=1, max_history_examples=6), candidates) == 1
    assert epoch_draw_per_user(TrainConfig(next_watch_per_user=-1, max_history_examples=0), candidates) == -1
    assert epoch_draw_per_user(TrainConfig(next_watch_per_user=3, max_history_examples=100), candidates) == 3


def test_overrides_parse_each_field_as_its_type_and_name_what_is_wrong():
    config = TrainConfig().with_overrides(["next_watch_per_user=-1", "logq_correction=false", "id_dropout=0.5",
                                           "max_grad_norm=none", "loss=bce"])
    assert (config.next_watch_per_user, config.logq_correction, config.id_dropout, config.max_grad_norm,
            config.loss) == (-1, False, 0.5, None, "bce")
    with pytest.raises(ValueError, match="epochs='many': not a int"):
        TrainConfig().with_overrides(["epochs=many"])
    with pytest.raises(ValueError, match="expected FIELD=VALUE"):
        TrainConfig().with_overrides(["epoch=3"])
    with pytest.raises(ValueError, match="id_dropout must be in"):
        TrainConfig().with_overrides(["id_dropout=1.5"])


def test_draw_per_user_keeps_at_most_k_of_each_user_without_repeats():
    candidates = Examples(np.repeat([0, 1, 2], [5, 1, 3]), np.arange(9), np.full(9, -1), np.arange(9))
    drawn = draw_per_user(np.random.default_rng(0), candidates, 2)
    assert np.bincount(drawn.owners).tolist() == [2, 1, 2]
    assert len(set(drawn.titles.tolist())) == len(drawn)
    assert len(draw_per_user(np.random.default_rng(0), candidates, -1)) == 9


def test_the_logq_term_is_the_log_of_the_expected_in_batch_and_uniform_draws(problem):
    frequency = np.array([0.5, 0.25, 0.25, 0.0])
    expected = np.log(np.array([0.5, 0.25, 0.25, 0.0]) * 8 + 4 / 4 + 1e-12)
    assert np.allclose(log_expected_draws(frequency, batch_size=8, mixed=4, pool_size=4), expected)
    config = TrainConfig(batch_size=64, mixed_negatives=32, next_watch_per_user=0, validation_share=0.0)
    model = build_model("attention_no_id", problem.train_items, problem.train_users, **SMALL)
    setup = prepare_training(model, problem.train_items, problem.train_users, problem.train_positives, config,
                             torch.device("cpu"))
    counts = np.bincount(problem.train_positives.title_rows, minlength=problem.train_items.n_titles)
    q = 64 * counts / counts.sum() + 32 / len(setup.pool)
    assert np.allclose(setup.log_q.numpy(), np.log(q + 1e-12), atol=1e-5)
    batch = assemble_batch(setup.index.users(torch.tensor([0, 1]), torch.tensor([3, 3]), torch.tensor([-1, -1])),
                           setup.item_inputs, torch.tensor([4, 5]), torch.tensor([4, 5]), torch.tensor([4, 6]),
                           setup.log_q)
    assert batch.title_rows.tolist() == [4, 5, 6] and batch.item_index.tolist() == [0, 1]
    assert torch.equal(batch.log_q, setup.log_q[torch.tensor([4, 5, 6])])


def test_id_dropout_presents_the_stated_share_of_titles_as_cold_ones():
    items = make_synthetic(n_users=5, n_titles=4000, n_cold=1, seed=0).train_items
    tensors = item_tensors(items, np.sort(items.title_ids))
    cold = ColdColumns(interaction=torch.tensor([0, 1]), no_views=torch.tensor([27]))  # stand-ins
    draws = np.random.default_rng(0).random((4, len(tensors)))
    dropped = drop_item_inputs(tensors, draws, ["id", "categorical", "synopsis"], 0.3, 0.0, cold)
    zeroed = (dropped.id_rows < 0).numpy() & (tensors.id_rows >= 0).numpy()
    assert abs(zeroed.mean() - 0.3) < 0.03
    new_rows = np.repeat(np.arange(len(tensors)), np.diff(dropped.categorical_offsets.numpy()))
    cold_columns = dropped.categorical_indices.numpy()
    assert set(np.flatnonzero(zeroed)) <= set(new_rows[cold_columns == 27])  # each cold one gets no_views
    assert not np.isin(cold_columns[np.isin(new_rows, np.flatnonzero(zeroed))], [0, 1]).any()  # and loses its bins
    kept = ~zeroed
    before = np.repeat(np.arange(len(tensors)), np.diff(tensors.categorical_offsets.numpy()))
    assert np.array_equal(cold_columns[np.isin(new_rows, np.flatnonzero(kept))],
                          tensors.categorical_indices.numpy()[np.isin(before, np.flatnonzero(kept))])


def test_modality_dropout_drops_each_type_at_its_rate_and_never_empties_a_title():
    items = make_synthetic(n_users=5, n_titles=4000, n_cold=1, missing_share=0.0, seed=0).train_items
    tensors = item_tensors(items, np.sort(items.title_ids))
    no_cold = ColdColumns(torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    draws = np.random.default_rng(1).random((4, len(tensors)))
    dropped = drop_item_inputs(tensors, draws, ["categorical", "synopsis", "cover_art"], 0.0, 0.4, no_cold)
    present = np.stack([np.diff(dropped.categorical_offsets.numpy()) > 0, dropped.synopsis_present.numpy(),
                        dropped.cover_art_present.numpy()])
    assert present.any(0).all()
    all_dropped = (draws[:3] < 0.4).all(0)  # such titles keep every type
    assert present[:, all_dropped].all()
    assert np.allclose(1 - present[:, ~all_dropped].mean(1), 0.4 * (1 - 0.4 ** 2) / (1 - 0.4 ** 3), atol=0.04)


def test_bce_and_sampled_softmax_both_learn_to_rank_cold_titles(problem):
    for loss in ("bce", "sampled_softmax"):
        config = TrainConfig(epochs=8, batch_size=64, patience=3, seed=0, loss=loss, negative_rate=10)
        result = train_variant("attention_no_id", problem.train_items, problem.train_users, problem.train_positives,
                               config, **SMALL)
        # bce starts near 0.69 per pair; the softmax near log(candidates): 0.5 nats less is 40 % more mass on the positive
        assert result.best_val_loss < (0.8 * result.initial_val_loss if loss == "bce" else
                                       result.initial_val_loss - 0.5), loss
        auc = cold_title_auc(scores(result.model, problem.score_users, problem.score_items), problem)
        assert auc > 0.65, (loss, auc)


def test_dropout_options_keep_training_deterministic(problem):
    def weights():
        config = TrainConfig(epochs=1, batch_size=128, seed=3, id_dropout=0.5, modality_dropout=0.3)
        return train_variant("attention_id", problem.train_items, problem.train_users, problem.train_positives,
                             config, **SMALL).model.state_dict()
    first, second = weights(), weights()
    assert all(torch.equal(first[k], second[k]) for k in first)
