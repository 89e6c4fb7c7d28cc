"""The one mask definition (Philox 4x32-10) and the compiled kernel that computes it."""

import math

import pytest
import torch

from dropkit._kernels import build, philox
from dropkit._kernels.philox import keep_mask, philox_4x32_10, random_words, threshold

needs_kernel = pytest.mark.skipif(
    not build.cpu_kernels_available(), reason="no C++ compiler: the compiled path is unavailable"
)

# Random123's tests/kat_vectors: counter (4 words), key (2 words), output (4 words)
KNOWN_ANSWERS = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]


def test_known_answer_vectors():
    for counter, key, expected in KNOWN_ANSWERS:
        out = philox_4x32_10(torch.tensor(counter), torch.tensor(key))
        assert out.tolist() == expected
    # the same, batched, with one key broadcast against several counters
    counters = torch.tensor([counter for counter, _, _ in KNOWN_ANSWERS[:2]])
    assert (
        philox_4x32_10(counters[:1].expand(3, 4), torch.zeros(2, dtype=torch.int64)).tolist()
        == [KNOWN_ANSWERS[0][2]] * 3
    )


def test_philox_refuses_bad_shapes_and_dtypes():
    with pytest.raises(TypeError, match="int64"):
        philox_4x32_10(torch.zeros(4, dtype=torch.int32), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"dim of 4 .* shapes \(3,\)"):
        philox_4x32_10(torch.zeros(3, dtype=torch.int64), torch.zeros(2, dtype=torch.int64))


def test_threshold_rule():
    assert threshold(0.5) == 2**31
    assert threshold(0.0) == 2**32 - 1  # clipped
    assert threshold(1.0) == 0
    assert threshold(0.25) == 3 * 2**30
    # halves round up: (1 - p) * 2**32 = 1.5
    assert threshold(1 - 1.5 / 2**32) == 2
    for p in (1e-3, 0.1, 0.3, 0.9):
        assert abs(threshold(p) / 2**32 - (1 - p)) <= 2**-32
    with pytest.raises(ValueError, match="p must be in"):
        threshold(1.5)


def test_words_follow_the_counter_layout():
    seed, offset = 0x0123456789ABCDEF, (7 << 32) | 5
    words = random_words(10, seed, offset)
    key = torch.tensor([seed & 0xFFFFFFFF, seed >> 32])
    for group in range(3):
        counter = torch.tensor([group, 0, 5, 7])
        expected = philox_4x32_10(counter, key).tolist()
        assert words[4 * group : 4 * group + 4].tolist() == expected[: len(words) - 4 * group]
    # a counter index past 2**32 fills word 1 of the counter
    far = (1 << 32) + 3
    expected = philox_4x32_10(torch.tensor([3, 1, 0, 0]), torch.tensor([1, 0]))
    got = philox._group_words(far, far + 1, 1, 0, torch.device("cpu"))
    assert got.view(-1).tolist() == expected.tolist()


def test_keep_mask_is_words_below_the_threshold_across_chunks(monkeypatch):
    monkeypatch.setattr(philox, "CHUNK", 8)  # several chunks, a ragged last one
    words = random_words(101, 42, 3)
    assert torch.equal(keep_mask((101,), 0.4, 42, 3), words < threshold(0.4))
    assert torch.equal(keep_mask((101,), 0.4, 42, 3), keep_mask((1, 101), 0.4, 42, 3).view(-1))
    assert keep_mask((0, 3), 0.4, 42).shape == (0, 3)
    assert keep_mask((), 0.4, 42).shape == ()


def test_seed_as_tensor_and_negative_seeds():
    seed = -123456789012345
    assert torch.equal(random_words(50, seed), random_words(50, seed + 2**64))
    assert torch.equal(random_words(50, seed), random_words(50, torch.tensor(seed)))
    assert torch.equal(random_words(50, seed), random_words(50, torch.tensor([seed])))
    with pytest.raises(ValueError, match="one-element int64"):
        random_words(5, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="count must be >= 0, got -1"):
        random_words(-1, 0)


def test_sample_seed_draws_once_from_the_generator():
    generator = torch.Generator().manual_seed(11)
    seeds = [int(philox.sample_seed(generator)) for _ in range(2000)]
    assert len(set(seeds)) == 2000
    negative = sum(seed < 0 for seed in seeds)  # the whole int64 range: the sign bit is random
    assert abs(negative - 1000) < 5 * math.sqrt(500)
    # exactly one randint over the int64 range: the generator moves as that draw moves it
    again, reference = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    assert int(philox.sample_seed(again)) == seeds[0]
    torch.randint(-(2**63), 2**63 - 1, (), generator=reference)
    assert torch.equal(again.get_state(), reference.get_state())


# --- the compiled kernel computes exactly this definition ------------------------------------

SIZES = [0, 1, 3, 4, 5, 63, 64, 65, 1000, 4097, 40000]
SEEDS = [0, 1, -5, 126920237933305286, 2**63 - 1]


@needs_kernel
@pytest.mark.parametrize("n", SIZES)
def test_kernel_mask_bit_for_bit(n):
    """The kernel's dropout of ones keeps exactly the definition's mask, in every dtype, also
    on a strided input, and its boolean mask is that mask too."""
    from dropkit._kernels import cpu

    for seed in SEEDS:
        for offset in (0, 3, -1):
            keep = keep_mask((n,), 0.3, seed, offset)
            assert torch.equal(cpu.keep_mask((n,), 0.3, seed, offset), keep), (seed, offset)
            for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
                ones = torch.ones(n, dtype=dtype)
                strided = torch.ones(2 * n, dtype=dtype)[::2]
                for x in (ones, strided):
                    out = cpu.dropout_with_seed(x, 0.3, seed, offset)
                    assert torch.equal(out != 0, keep), (seed, offset, dtype, x.stride())


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_kernel_output_bit_for_bit_in_every_dtype(dtype, p):
    from dropkit._kernels import cpu

    x = torch.randn(3, 1111, generator=torch.Generator().manual_seed(0)).to(dtype)
    x[0, :3] = torch.tensor([float("inf"), float("-inf"), float("nan")])
    keep = keep_mask(x.shape, p, 99, 2)
    expected = torch.where(keep, x * (1 / (1 - p)), torch.zeros((), dtype=dtype))
    out = cpu.dropout_with_seed(x, p, 99, 2)
    assert out.dtype == dtype
    assert torch.equal(out.isnan(), expected.isnan())
    assert torch.equal(out.nan_to_num(), expected.nan_to_num())


def layouts(x):
    """``x`` in other memory layouts, same values: channels_last, permuted, strided."""
    return {
        "channels_last": x.contiguous(memory_format=torch.channels_last),
        "transposed": x.transpose(1, 3).contiguous().transpose(1, 3),
        "permuted": x.permute(2, 0, 3, 1).contiguous().permute(1, 3, 0, 2),
        "strided": torch.stack([x, x], -1)[..., 0],
    }


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize(
    "shape",
    # more channels and positions than one tile; sizes whose counters line up across a tile
    # (four positions per counter) and sizes whose do not
    [(2, 70, 9, 11), (2, 70, 8, 12), (1, 9, 5, 128), (3, 130, 4, 6), (2, 40, 4, 8)],
)
def test_kernel_layouts_give_the_same_values_in_the_input_format(dtype, shape):
    from dropkit._kernels import cpu

    x = torch.randn(*shape).to(dtype)
    expected = cpu.dropout_with_seed(x, 0.4, 7, 1)
    keep = keep_mask(x.shape, 0.4, 7, 1)
    assert torch.equal(expected, torch.where(keep, x * (1 / 0.6), torch.zeros((), dtype=dtype)))
    for name, y in layouts(x).items():
        out = cpu.dropout_with_seed(y, 0.4, 7, 1)
        assert torch.equal(out, expected), name
        if name != "strided":
            assert out.stride() == y.stride(), name
    assert cpu.dropout_with_seed(torch.tensor(2.0), 0.5, 3).shape == ()


# --- the 64-bit key removes the old hash's 2**32-stream flaw ---------------------------------


def assert_unrelated(first, second, n=1 << 17):
    a = keep_mask((n,), 0.5, first).double() * 2 - 1
    b = keep_mask((n,), 0.5, second).double() * 2 - 1
    # circular cross-correlation at every shift at once; each is a mean of n +-1 terms
    spectrum = torch.fft.rfft(a).conj() * torch.fft.rfft(b)
    correlation = torch.fft.irfft(spectrum, n=n) / n
    assert correlation.abs().max().item() < 6.5 / math.sqrt(n), (first, second)
    return correlation


def test_seeds_sharing_a_low_word_give_unrelated_masks():
    # under the old hash these two gave exact shifted copies (shift 110315): their mixed keys
    # shared the low 32 bits, and the low key only shifted the index
    correlation = assert_unrelated(126920237933305286, 3578158938142362827)
    assert abs(correlation[110315].item()) < 5 / math.sqrt(correlation.numel())
    # seeds equal in the low 32 bits (the key's high word differs) are unrelated too
    assert_unrelated(12345, 12345 + (1 << 32))
    assert_unrelated(-1, (1 << 32) - 1)


# --- a statistical battery, tolerances from the binomial distribution ------------------------


def test_keep_frequency_matches_the_rate():
    n = 1 << 17
    for p in (0.01, 0.3, 0.5, 0.9):
        kept = keep_mask((n,), p, 2024).double().mean().item()
        assert abs(kept - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n), p


def test_no_correlation_at_any_small_or_structural_lag():
    n = 1 << 18
    keep = keep_mask((n,), 0.5, 77).double()
    for lag in (1, 2, 3, 4, 5, 8, 63, 64, 65, 1024, 4096):
        both = (keep[lag:] * keep[:-lag]).mean().item()
        assert abs(both - 0.25) < 5 * math.sqrt(0.25 * 0.75 / (n - lag)), lag


def test_every_position_is_fair_across_seeds():
    # 512 positions x 400 seeds in one batched call; Pearson's chi-square over the positions
    seeds = torch.randint(-(2**63), 2**63 - 1, (400,), generator=torch.Generator().manual_seed(1))
    key = torch.stack([seeds & 0xFFFFFFFF, seeds >> 32], -1).view(400, 1, 2)
    counters = torch.zeros(128, 4, dtype=torch.int64)
    counters[:, 0] = torch.arange(128)
    words = philox_4x32_10(counters.view(1, 128, 4), key).view(400, 512)
    kept = (words < threshold(0.3)).sum(0).double()
    expected = 400 * 0.7
    chi_square = ((kept - expected) ** 2 / (expected * 0.3)).sum().item()
    assert abs(chi_square - 512) < 6 * math.sqrt(2 * 512)
    # every bit of the words is fair, too
    bits = (words.view(-1, 1) >> torch.arange(32)) & 1
    assert (bits.double().mean(0) - 0.5).abs().max().item() < 5 * math.sqrt(0.25 / words.numel())


def test_consecutive_seeds_and_offsets_are_independent():
    n = 1 << 17
    bound = 5 * math.sqrt(0.25 * 0.75 / n)
    for a, b in (((5, 0), (6, 0)), ((5, 0), (5, 1)), ((0, 0), (1, 0)), ((5, 1), (6, 0))):
        first = keep_mask((n,), 0.5, a[0], a[1]).double()
        second = keep_mask((n,), 0.5, b[0], b[1]).double()
        assert abs((first * second).mean().item() - 0.25) < bound, (a, b)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_kernel_rounds_every_half_precision_value_as_torch_does(dtype):
    # all 65536 bit patterns: normals, subnormals, infinities, NaNs, both zeros
    from dropkit._kernels import cpu

    x = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(dtype)
    for p in (1e-9, 0.3):
        keep = keep_mask(x.shape, p, 5)
        expected = torch.where(keep, x * (1 / (1 - p)), torch.zeros((), dtype=dtype))
        out = cpu.dropout_with_seed(x, p, 5)
        same = (out.view(torch.int16) == expected.view(torch.int16)) | (
            out.isnan() & expected.isnan()
        )
        assert bool(same.all()), int((~same).sum())
