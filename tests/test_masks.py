import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrirecon.data.masks import (
    MASKS,
    MaskSpec,
    center_mask,
    eval_rng,
    train_rng,
)

FNAMES = ["file1000000.h5", "file_brain_AXT2_200_2000019.h5", "tugraz_brain_t2_4ch.h5"]


@pytest.mark.parametrize("fname", FNAMES)
@pytest.mark.parametrize("width", [368, 372, 256, 203])
@pytest.mark.parametrize("pairs", [((0.08,), (4,)), ((0.04,), (8,)), ((0.08, 0.04), (4, 8))])
def test_random_mask_bit_identical_to_fastmri(fname, width, pairs):
    subsample = pytest.importorskip("fastmri.data.subsample")
    cfs, accs = pairs
    ref_func = subsample.RandomMaskFunc(list(cfs), list(accs))
    ref, num_low = ref_func((1, 640, width, 2), seed=tuple(map(ord, fname)))
    ref = ref.numpy().reshape(-1).astype(bool)
    ours = MaskSpec("random", cfs, accs).sample(width, eval_rng(fname))
    assert np.array_equal(ours.mask, ref)
    assert ours.num_low == num_low


def test_eval_mask_same_for_every_call_and_file_specific():
    spec = MaskSpec("random", (0.08,), (4,))
    a = spec.sample(368, eval_rng("a.h5")).mask
    assert np.array_equal(a, spec.sample(368, eval_rng("a.h5")).mask)
    assert not np.array_equal(a, spec.sample(368, eval_rng("b.h5")).mask)


def test_train_masks_fresh_per_sample_and_reproducible():
    spec = MaskSpec("random", (0.08,), (4,))
    m = [spec.sample(368, train_rng(0, 0, i)).mask for i in range(4)]
    assert len({x.tobytes() for x in m}) == 4
    assert np.array_equal(m[2], spec.sample(368, train_rng(0, 0, 2)).mask)
    assert not np.array_equal(m[2], spec.sample(368, train_rng(0, 1, 2)).mask)


def test_center_position_matches_fastmri_rule():
    m = center_mask(368, 29)
    start = (368 - 29 + 1) // 2
    assert m.sum() == 29 and m[start] and m[start + 28] and not m[start - 1]


def test_equispaced_truly_equispaced():
    width, acc = 368, 4
    spec = MaskSpec("equispaced", (0.08,), (acc,))
    mask = spec.sample(width, np.random.RandomState(3)).mask
    outer = mask & ~center_mask(width, round(width * 0.08))
    cols = np.flatnonzero(mask)
    # every acc-th column from the offset is sampled: spacing exactly acc outside the centre
    offset = cols[0]
    assert offset < acc
    assert all(mask[offset::acc])
    assert outer.any()


def test_equispaced_fraction_hits_the_budget():
    for width in (368, 320, 640):
        for cf, acc in ((0.08, 4), (0.04, 8)):
            m = (
                MaskSpec("equispaced_fraction", (cf,), (acc,))
                .sample(width, np.random.RandomState(0))
                .mask
            )
            assert abs(m.sum() - width / acc) <= 2, (width, acc, m.sum())


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(MASKS)),
    width=st.integers(64, 800),
    acc=st.sampled_from([2, 4, 6, 8]),
    seed=st.integers(0, 2**31 - 1),
)
def test_mask_properties(kind, width, acc, seed):
    cf = 0.32 / acc
    spec = MaskSpec(kind, (cf,), (acc,))
    m = spec.sample(width, np.random.RandomState(seed))
    assert m.mask.shape == (width,) and m.mask.dtype == bool
    assert (m.mask & center_mask(width, m.num_low)).sum() == m.num_low  # centre fully sampled


@pytest.mark.parametrize(
    "cf,acc,match",
    [
        (0.5, 4, "exceeds"),
        (0.001, 4, "no centre column"),
        (0.08, 0.5, "acceleration must be"),
        (1.5, 4, "center fraction"),
    ],
)
def test_unsatisfiable_masks_are_rejected(cf, acc, match):
    with pytest.raises(ValueError, match=match):
        MaskSpec("random", (cf,), (acc,)).sample(64, np.random.RandomState(0))


def test_bad_spec():
    with pytest.raises(ValueError, match="unknown mask type"):
        MaskSpec("poisson", (0.08,), (4,))
    with pytest.raises(ValueError, match="equal length"):
        MaskSpec("random", (0.08, 0.04), (4,))
