"""The one preprocessing path: exact resize weights, grey conversion, standardization and crop validation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from synthetic import synthetic_eye

from eyesdk.errors import InvalidCropError
from eyesdk.preprocess import (
    DEFAULT_CONTRACT,
    PreprocessContract,
    model_feed,
    preprocess,
    preprocess_grey,
    resize_grey,
    resize_weights,
    standardize,
    standardize_step,
    to_grey,
)


@pytest.mark.parametrize(("n_in", "n_out"), [(93, 32), (24, 32), (32, 32), (300, 32), (9, 24)])
def test_resize_weights_are_row_stochastic(n_in: int, n_out: int) -> None:
    w = resize_weights(n_in, n_out)
    assert w.shape == (n_out, n_in)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    assert (w >= 0).all()


def test_same_size_resize_is_identity() -> None:
    np.testing.assert_allclose(resize_weights(32, 32), np.eye(32), atol=1e-7)


@pytest.mark.parametrize("side", [20, 64, 93, 160])
def test_resize_matches_pillow_bilinear(side: int) -> None:
    """Same filter as PIL's antialiased BILINEAR: within rounding of PIL's 8-bit output."""
    img = synthetic_eye(True, side, np.random.default_rng(side))
    ours = resize_grey(img, 32)
    pil = np.asarray(Image.fromarray(img).resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float32)
    assert np.abs(ours - pil).max() <= 1.01


def test_grey_uses_bt601_weights_and_color_order() -> None:
    bgr = np.zeros((10, 10, 3), np.uint8)
    bgr[..., 2] = 200  # red in BGR order
    np.testing.assert_allclose(to_grey(bgr, "bgr"), 0.299 * 200, rtol=1e-5)
    np.testing.assert_allclose(to_grey(bgr, "rgb"), 0.114 * 200, rtol=1e-5)
    bgra = np.concatenate([bgr, np.full((10, 10, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(to_grey(bgra), to_grey(bgr))


def test_float_crops_equal_uint8_crops() -> None:
    img = synthetic_eye(False, 40)
    np.testing.assert_allclose(preprocess(img.astype(np.float64) / 255.0), preprocess(img), atol=1e-4)


def test_standardize_gives_zero_mean_unit_std_and_floors_flat_crops() -> None:
    x = resize_grey(synthetic_eye(True, 70), 32)
    z = standardize(x, 0.02)
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std()) - 1.0) < 1e-4
    flat = np.full((32, 32), 100.0, np.float32)
    flat[0, 0] = 101.0
    assert float(np.abs(standardize(flat, 0.02)).max()) < 1.0  # floor: one grey level is not blown up


def test_batch_equals_single() -> None:
    rng = np.random.default_rng(0)
    stack = np.stack([synthetic_eye(bool(i % 2), 50, rng) for i in range(6)])
    batch = preprocess_grey(stack)
    for i in range(6):
        np.testing.assert_allclose(batch[i], preprocess_grey(stack[i]), atol=1e-5)
    assert preprocess(stack[0]).shape == (1, 1, DEFAULT_CONTRACT.size, DEFAULT_CONTRACT.size)


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        (np.zeros((0, 5), np.uint8), "sides must be 8..8192"),
        (np.zeros((4, 40), np.uint8), "4x40 pixels"),
        (np.zeros((20, 20, 2), np.uint8), "shape \\(20, 20, 2\\)"),
        (np.zeros((20,), np.uint8), "shape \\(20,\\)"),
        (np.full((20, 20), np.nan), "NaN or infinite"),
        (np.full((20, 20), np.inf, np.float32), "NaN or infinite"),
        (np.full((20, 20), 2.0), "values in \\[2, 2\\]"),
        (np.full((20, 20), -0.5), "must lie in \\[0, 1\\]"),
        (np.zeros((20, 20), np.int32), "dtype int32 is not supported"),
        (np.zeros((20, 20), bool), "dtype bool is not supported"),
        ([[1, 2], [3, 4]], "cannot classify a list; accepted: a numpy array"),
        (None, "cannot classify a NoneType"),
    ],
)
def test_invalid_crops_are_named(crop, message: str) -> None:
    with pytest.raises(InvalidCropError, match=message):
        to_grey(crop)


def test_unknown_color_order_is_refused() -> None:
    with pytest.raises(InvalidCropError, match="color must be 'bgr' or 'rgb'"):
        to_grey(np.zeros((20, 20, 3), np.uint8), "hsv")


def test_invalid_crop_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        to_grey(np.zeros((2, 2), np.uint8))


def test_contract_round_trip_and_refusal() -> None:
    c = PreprocessContract(size=24)
    assert PreprocessContract.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unsupported preprocessing contract"):
        PreprocessContract.from_dict({**c.to_dict(), "resize": "bicubic"})


def test_a_contract_field_this_eyesdk_does_not_know_is_refused() -> None:
    # a newer eyesdk's field changes what the model must be fed: ignoring it would be a silent wrong answer
    with pytest.raises(ValueError, match=r"field\(s\) \['mean_in_model'\] are unknown to this eyesdk"):
        PreprocessContract.from_dict({**DEFAULT_CONTRACT.to_dict(), "mean_in_model": True})


def test_in_model_standardization_is_a_contract_field_older_bundles_lack() -> None:
    old = DEFAULT_CONTRACT.to_dict()
    assert "normalization_in_model" not in old  # today's path serializes exactly as before the field existed
    assert PreprocessContract.from_dict(old).normalization_in_model is False
    in_model = PreprocessContract(size=24, normalization_in_model=True)
    assert in_model.to_dict()["normalization_in_model"] is True
    assert PreprocessContract.from_dict(in_model.to_dict()) == in_model
    assert in_model.as_trained() == PreprocessContract(size=24)


def test_the_feed_skips_standardize_where_the_artifact_does_it() -> None:
    grey = synthetic_eye(True, (40, 60), np.random.default_rng(3)).astype(np.float32)
    runtime, in_model = PreprocessContract(size=24), PreprocessContract(size=24, normalization_in_model=True)
    resized = resize_grey(grey, 24)
    np.testing.assert_array_equal(model_feed(in_model)(grey), resized)
    np.testing.assert_array_equal(preprocess_grey(grey, in_model), resized)
    np.testing.assert_array_equal(model_feed(runtime)(grey), standardize(resized, runtime.std_floor))
    np.testing.assert_array_equal(standardize_step(in_model)(resized), resized)
    np.testing.assert_array_equal(standardize_step(runtime)(resized), standardize(resized, runtime.std_floor))


# -- one way for every crop form ------------------------------------------------------------------------------------


def test_to_grey_takes_every_crop_form(tmp_path) -> None:
    """Arrays, ndarray subclasses, PIL images and paths all arrive at the same grey pixels through ``to_grey``."""
    eye = synthetic_eye(True, (30, 44))
    rgb = np.dstack([eye, eye // 2, 255 - eye])
    Image.fromarray(rgb).save(tmp_path / "eye.png")
    expected = to_grey(rgb, "rgb")
    np.testing.assert_allclose(to_grey(rgb[:, :, ::-1].copy(), "bgr"), expected, rtol=1e-6)
    np.testing.assert_array_equal(to_grey(Image.fromarray(rgb)), expected)  # PIL images are RGB
    np.testing.assert_array_equal(to_grey(tmp_path / "eye.png", "bgr"), expected)  # files too, whatever color says
    np.testing.assert_array_equal(to_grey(str(tmp_path / "eye.png")), expected)
    memmap = np.lib.format.open_memmap(tmp_path / "eye.npy", mode="w+", dtype=np.uint8, shape=rgb.shape)
    memmap[...] = rgb
    np.testing.assert_array_equal(to_grey(memmap, "rgb"), expected)


def test_large_colour_crops_are_converted_in_bands_without_a_float_copy() -> None:
    """Above STRIP_PIXELS a colour crop is converted a band of rows at a time: the same grey (to float32 rounding)
    as in one piece, the same bits for any view of the same pixels, and no 12-byte-per-pixel float copy."""
    import tracemalloc

    from eyesdk import preprocess as module

    rng = np.random.default_rng(5)
    crop = rng.integers(0, 256, (700, 600, 3), dtype=np.uint8)
    assert crop.shape[0] * crop.shape[1] > module.STRIP_PIXELS
    grey = to_grey(crop)
    whole = crop.astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32)
    np.testing.assert_allclose(grey, whole, rtol=1e-6, atol=1e-3)
    np.testing.assert_array_equal(to_grey(np.asfortranarray(crop)), grey)
    tracemalloc.start()
    try:
        to_grey(crop)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * crop.shape[0] * crop.shape[1] + (4 << 20)  # the grey result and one band, not 12 B/pixel
    floats = crop / 255.0
    floats[650, 10, 1] = 1.5  # out of range far down the crop: the message gives the whole crop's range
    with pytest.raises(InvalidCropError, match=r"float crop has values in \[0, 1\.5\]"):
        to_grey(floats)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 24.0}, r"size must be an int in 8\.\.512, got 24\.0"),
        ({"size": True}, r"size must be an int in 8\.\.512, got True"),
        ({"size": 4}, r"size must be an int in 8\.\.512, got 4"),
        ({"std_floor": 0.0}, r"std_floor must be a finite number > 0, got 0\.0"),
        ({"std_floor": float("inf")}, r"std_floor must be a finite number > 0, got inf"),
        ({"std_floor": "0.02"}, r"std_floor must be a finite number > 0, got '0\.02'"),
        ({"normalization_in_model": 1}, r"normalization_in_model must be true or false, got 1"),
        ({"normalization_in_model": "yes"}, r"normalization_in_model must be true or false, got 'yes'"),
    ],
)
def test_contract_values_are_validated_where_it_is_made(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PreprocessContract(**changes)
    with pytest.raises(ValueError, match=message):
        PreprocessContract.from_dict({**DEFAULT_CONTRACT.to_dict(), **changes})


def test_one_crop_and_a_stack_give_the_same_bits() -> None:
    """predict() and predict_batch() must agree to the bit: standardize ran other float32 arithmetic for a stack
    (up to 3.6e-7 apart), now the same sums, one dot product per crop and the same float64 scale."""
    rng = np.random.default_rng(9)
    for size in (24, 32, 17):
        for scale in (1.0, 40.0, 255.0):
            stack = (rng.random((19, size, size)) * scale).astype(np.float32)
            together = standardize(stack, 0.02)
            for i in range(len(stack)):
                np.testing.assert_array_equal(together[i], standardize(stack[i], 0.02))
    crops = np.stack([synthetic_eye(bool(i % 2), (40, 56), rng) for i in range(7)])
    batch = preprocess_grey(crops)
    for i in range(len(crops)):
        np.testing.assert_array_equal(batch[i], preprocess_grey(crops[i]))


@pytest.mark.parametrize("channels", [3, 4])
def test_rgb_and_the_same_pixels_as_bgr_give_the_same_bits(channels: int) -> None:
    """to_grey(x, "rgb") differed from to_grey(x[..., ::-1], "bgr") by up to 3e-5 (a reversed view summed in
    another order); both now weigh B, G, R in that order."""
    rgb = np.random.default_rng(3).integers(0, 256, (40, 60, channels), dtype=np.uint8)
    bgr = rgb.copy()
    bgr[:, :, :3] = rgb[:, :, 2::-1]
    np.testing.assert_array_equal(to_grey(rgb, "rgb"), to_grey(bgr, "bgr"))
    np.testing.assert_array_equal(to_grey(rgb / 255.0, "rgb"), to_grey(bgr / 255.0, "bgr"))
