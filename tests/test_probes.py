"""Probes: pairs, shapes, translation loops."""

import numpy as np
import pytest

from regionaudit import probes as P
from regionaudit.errors import BadData, BadOption


def test_pairs_are_distinct_and_seeded():
    i, j = P.random_pairs(7, 500, seed=3)
    assert (i != j).all() and i.min() >= 0 and j.max() < 7
    i2, j2 = P.random_pairs(7, 500, seed=3)
    assert (i == i2).all() and (j == j2).all()
    assert not (P.random_pairs(7, 500, seed=4)[0] == i).all()


def test_pairs_need_two_rows():
    with pytest.raises(BadData):
        P.random_pairs(1, 3, seed=0)


def test_rows_flat_or_shaped():
    flat = np.arange(24.0).reshape(2, 12)
    shaped = P.as_rows(flat, (3, 2, 2), "data")
    assert shaped.shape == (2, 3, 2, 2) and shaped[1, 0, 0, 0] == 12
    assert P.as_rows(shaped, (3, 2, 2), "data") is shaped
    with pytest.raises(BadData, match=r"\(2, 12\)"):
        P.as_rows(flat, (5,), "data")


def test_segments_shape():
    s = np.zeros((4, 2, 3))
    a, b = P.as_segments(s, (3,))
    assert a.shape == b.shape == (4, 3)
    with pytest.raises(BadData):
        P.as_segments(np.zeros((4, 3, 3)), (3,))


def test_integer_shift_moves_pixels_with_zero_fill():
    img = np.arange(1.0, 1 + 2 * 5 * 6).reshape(2, 5, 6)
    out = P.shift_images(img, np.array([[1.0, 0.0], [0.0, -2.0]]), "chw")
    expected_right = np.zeros_like(img)
    expected_right[:, :, 1:] = img[:, :, :-1]
    expected_up = np.zeros_like(img)
    expected_up[:, :-2, :] = img[:, 2:, :]
    assert np.allclose(out[0], expected_right)
    assert np.allclose(out[1], expected_up)


def test_half_pixel_shift_is_bilinear_average():
    img = np.random.default_rng(0).standard_normal((1, 4, 4))
    out = P.shift_images(img, np.array([[0.5, 0.0]]), "chw")[0]
    assert np.allclose(out[:, :, 1:], (img[:, :, 1:] + img[:, :, :-1]) / 2)


def test_hwc_layout_matches_chw():
    img = np.random.default_rng(1).standard_normal((3, 5, 5))
    shifts = np.array([[0.3, 1.7]])
    chw = P.shift_images(img, shifts, "chw")
    hwc = P.shift_images(np.moveaxis(img, 0, -1), shifts, "hwc")
    assert np.allclose(np.moveaxis(hwc, -1, 1), chw)


def test_loops_are_closed_circles():
    rows = np.random.default_rng(2).standard_normal((3, 1, 6, 6))
    loops = P.translation_loops(rows, 2, radius=1.0, steps=8, layout="chw")
    assert len(loops) == 2
    a, b = loops[0].edges
    assert a.shape == (8, 1, 6, 6)
    assert np.allclose(b[-1], a[0])  # the last edge returns to the start
    assert np.allclose(a[0], P.shift_images(rows[0], np.array([[1.0, 0.0]]), "chw")[0])


def test_loops_need_images():
    with pytest.raises(BadOption, match="image"):
        P.translation_loops(np.zeros((3, 10)), 1, 1.0, 8, "chw")


def test_segments_that_repeat_a_pair_are_said(tmp_path):
    """Pairs are drawn independently: with few rows some repeat, and a note counts them."""
    from regionaudit.options import Options

    np.save(tmp_path / "two.npy", np.arange(8.0).reshape(2, 4))
    np.save(tmp_path / "many.npy", np.arange(4000.0).reshape(1000, 4))
    probes = P.build_probes((4,), Options.from_given({"data": str(tmp_path / "two.npy"), "pairs": 4}))
    assert len(probes.segments[0]) == 4
    assert any(n.startswith("3 of the 4 segments join a pair of rows drawn before") and "2 data rows make 1 distinct pair)" in n
               for n in probes.notes)
    i, j = P.random_pairs(5, 10, 0)
    repeats = 10 - len({tuple(sorted(p)) for p in zip(i.tolist(), j.tolist())})
    np.save(tmp_path / "five.npy", np.arange(20.0).reshape(5, 4))
    probes = P.build_probes((4,), Options.from_given({"data": str(tmp_path / "five.npy"), "pairs": 10}))
    assert repeats > 0 and any(n.startswith(f"{repeats} of the 10 segments") for n in probes.notes)
    probes = P.build_probes((4,), Options.from_given({"data": str(tmp_path / "many.npy"), "pairs": 5}))
    assert not any("drawn before" in n for n in probes.notes)


def test_segment_lengths_neither_underflow_nor_overflow():
    a = np.zeros((2, 3))
    b = np.array([[3e-300, 4e-300, 0.0], [3e200, -4e200, 0.0]])
    np.testing.assert_allclose(P.segment_lengths(a, b), [5e-300, 5e200], rtol=1e-15)
    assert P.segment_lengths(a, a).tolist() == [0.0, 0.0]
