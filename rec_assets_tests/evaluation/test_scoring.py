"""top_k: the ranking contract the evaluation and the weekly recommendation table rely on."""

import numpy as np
import pytest
import torch

from rec_assets.evaluation.scoring import CSR, top_k, top_k_from_scores


def reference_top_k(user_emb, item_emb, k, exclude=None, candidate_mask=None):
    """Brute force: full sort per user by (score descending, title index ascending)."""
    scores = (user_emb.double() @ item_emb.double().T).numpy()
    n_users, n_items = scores.shape
    indices = np.full((n_users, k), -1, dtype=np.int64)
    for u in range(n_users):
        allowed = np.ones(n_items, dtype=bool) if candidate_mask is None else candidate_mask.copy()
        if exclude is not None:
            allowed[exclude.row(u)] = False
        items = np.flatnonzero(allowed)
        order = items[np.lexsort((items, -scores[u, items]))][:k]
        indices[u, : order.size] = order
    return indices


@pytest.fixture
def problem():
    gen = torch.Generator().manual_seed(0)
    user_emb = torch.randn(37, 8, generator=gen)
    item_emb = torch.randn(23, 8, generator=gen)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 37, 120)
    cols = rng.integers(0, 23, 120)
    exclude = CSR.from_pairs(rows, cols, 37)
    mask = rng.random(23) < 0.7
    return user_emb, item_emb, exclude, mask


def test_matches_brute_force_with_exclusion_and_candidates(problem):
    user_emb, item_emb, exclude, mask = problem
    indices, scores = top_k(user_emb, item_emb, 5, exclude, mask)
    assert indices.dtype == torch.int64 and scores.dtype == torch.float32
    assert indices.shape == scores.shape == (37, 5)
    np.testing.assert_array_equal(indices.numpy(), reference_top_k(user_emb, item_emb, 5, exclude, mask))


@pytest.mark.parametrize("chunk_users", [1, 4, 36, 37, 10_000])
def test_chunked_equals_unchunked(problem, chunk_users):
    user_emb, item_emb, exclude, mask = problem
    whole_i, whole_s = top_k(user_emb, item_emb, 6, exclude, mask, chunk_users=len(user_emb))
    chunk_i, chunk_s = top_k(user_emb, item_emb, 6, exclude, mask, chunk_users=chunk_users)
    torch.testing.assert_close(chunk_i, whole_i, rtol=0, atol=0)
    torch.testing.assert_close(chunk_s, whole_s)


def test_scores_are_dot_products_in_descending_order(problem):
    user_emb, item_emb, _, _ = problem
    indices, scores = top_k(user_emb, item_emb, 4)
    expected = (user_emb[:, None, :] * item_emb[indices]).sum(-1)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)
    assert bool((scores[:, :-1] >= scores[:, 1:]).all())


def test_watched_titles_are_never_recommended(problem):
    user_emb, item_emb, exclude, _ = problem
    indices, _ = top_k(user_emb, item_emb, 10, exclude)
    for u in range(len(user_emb)):
        assert not set(indices[u].tolist()) & set(exclude.row(u).tolist())


def test_watched_title_that_would_rank_first_is_skipped():
    user_emb = torch.tensor([[1.0], [1.0]])
    item_emb = torch.tensor([[3.0], [2.0], [1.0]])
    exclude = CSR.from_pairs([0], [0], 2)  # user 0 watched the best title
    indices, scores = top_k(user_emb, item_emb, 2, exclude)
    assert indices.tolist() == [[1, 2], [0, 1]]
    assert scores.tolist() == [[2.0, 1.0], [3.0, 2.0]]


def test_candidate_mask_restricts_the_lists(problem):
    user_emb, item_emb, _, mask = problem
    indices, _ = top_k(user_emb, item_emb, 6, candidate_mask=torch.as_tensor(mask))
    assert mask[indices.numpy()].all()


def test_pads_with_minus_one_and_neg_inf_when_fewer_candidates_than_k():
    user_emb = torch.tensor([[1.0], [1.0], [1.0]])
    item_emb = torch.tensor([[1.0], [4.0], [2.0], [3.0]])
    mask = np.array([True, False, True, True])
    exclude = CSR.from_pairs([1, 2, 2, 2], [3, 0, 2, 3], 3)  # user 1 lost one candidate, user 2 all of them
    indices, scores = top_k(user_emb, item_emb, 5, exclude, mask)
    assert indices.tolist() == [[3, 2, 0, -1, -1], [2, 0, -1, -1, -1], [-1] * 5]
    assert torch.isneginf(scores[0, 3:]).all() and torch.isneginf(scores[2]).all()
    assert scores[0, :3].tolist() == [3.0, 2.0, 1.0]


def test_empty_candidate_set_gives_all_padding():
    indices, scores = top_k(torch.ones(2, 3), torch.ones(4, 3), 6, candidate_mask=np.zeros(4, dtype=bool))
    assert (indices == -1).all() and torch.isneginf(scores).all()


def test_ties_keep_lower_title_index_first_inside_and_at_the_boundary():
    user_emb = torch.tensor([[1.0]])
    # scores 1, 3, 3, 5, 3, 3: the K = 3 boundary falls inside the run of 3s
    item_emb = torch.tensor([[1.0], [3.0], [3.0], [5.0], [3.0], [3.0]])
    indices, _ = top_k(user_emb, item_emb, 3)
    assert indices.tolist() == [[3, 1, 2]]


def test_ties_in_a_long_row_are_resolved_by_index_not_by_topk_internals():
    # Identical embeddings (e.g. cold titles with the same metadata) tie everywhere.
    item_emb = torch.ones(5000, 4)
    exclude = CSR.from_pairs([0, 0], [0, 2], 3)
    mask = np.ones(5000, dtype=bool)
    mask[1] = False
    indices, _ = top_k(torch.ones(3, 4), item_emb, 4, exclude, mask, chunk_users=2)
    assert indices.tolist() == [[3, 4, 5, 6], [0, 2, 3, 4], [0, 2, 3, 4]]


def test_memory_is_bounded_by_the_chunk():
    seen = []

    def score_chunk(start, stop, candidates):
        seen.append(stop - start)
        return torch.zeros(stop - start, candidates.numel())

    top_k_from_scores(score_chunk, n_users=10_001, n_items=7, k=3, chunk_users=1000)
    assert max(seen) == 1000 and sum(seen) == 10_001


def test_rejects_non_finite_embeddings_and_malformed_exclusions():
    with pytest.raises(ValueError, match="NaN"):
        top_k(torch.tensor([[float("nan")]]), torch.ones(2, 1), 1)
    with pytest.raises(ValueError, match="out of range"):
        top_k(torch.ones(1, 1), torch.ones(2, 1), 1, CSR(np.array([0, 1]), np.array([2])))
    with pytest.raises(ValueError, match="n_rows"):
        top_k(torch.ones(2, 1), torch.ones(2, 1), 1, CSR(np.array([0, 1]), np.array([0])))


def test_csr_from_pairs_sorts_and_dedupes():
    csr = CSR.from_pairs([2, 0, 2, 2], [5, 1, 3, 5], 4)
    assert csr.offsets.tolist() == [0, 1, 1, 3, 3]
    assert csr.indices.tolist() == [1, 3, 5]
