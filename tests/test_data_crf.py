"""Response curves, their inverses, the project's PCA basis and the official invemor.txt reader (zoo.data.crf)."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from zoo.data import crf, load_inverse_basis
from zoo.data.make_basis import reconstruction_errors
from zoo.errors import ZooError


@pytest.fixture(scope="module")
def bank() -> crf.CurveBank:
    return crf.curve_bank()


def test_every_curve_is_strictly_increasing_from_0_to_1(bank):
    curves = bank.train + bank.eval
    assert {c.family for c in curves} == set(crf.FAMILY_SIZES)
    for c in curves:
        assert c.forward.shape == (crf.SAMPLES,), c.name
        assert c.forward[0] == 0.0 and abs(c.forward[-1] - 1.0) < 1e-12, c.name
        assert np.diff(c.forward).min() > 0, c.name
        assert c.inverse[0] == 0.0 and c.inverse[-1] == 1.0, c.name
        assert np.diff(c.inverse).min() >= 0, c.name


def test_inverse_undoes_the_forward_curve(bank):
    for c in bank.train[:: len(bank.train) // 20]:
        roundtrip = np.interp(np.interp(crf.GRID, crf.GRID, c.forward), crf.GRID, c.inverse)
        assert np.abs(roundtrip - crf.GRID).max() < 2e-3, c.name
    gamma = crf.inverse_curve(crf.gamma_curve(2.24))
    assert np.abs(gamma - crf.GRID**2.24).max() < 1.5e-3  # interpolation error of the steep foot only


def test_split_holds_out_a_share_of_each_family_and_one_whole_family(bank):
    train = {c.name for c in bank.train}
    held = {c.name for c in bank.eval}
    assert not train & held
    assert {"gamma-2.24", "srgb", "rec709"} <= train
    assert not any(c.family == crf.HELD_OUT_FAMILY for c in bank.train)
    assert sum(c.family == crf.HELD_OUT_FAMILY for c in bank.eval) == crf.FAMILY_SIZES[crf.HELD_OUT_FAMILY]
    for family, size in crf.FAMILY_SIZES.items():
        if family != crf.HELD_OUT_FAMILY:
            assert sum(c.family == family for c in bank.eval) == max(1, round(crf.HELD_OUT_SHARE * size))
    for c in bank.train:  # perturbations and mixtures are built only from training curves
        for key in ("base", "first", "second"):
            assert c.params.get(key) is None or c.params[key] in train


def test_curve_bank_is_a_pure_function_of_its_seed(bank):
    again = crf.curve_bank.__wrapped__(crf.BANK_SEED)
    assert [c.name for c in again.train + again.eval] == [c.name for c in bank.train + bank.eval]
    for a, b in zip(again.train + again.eval, bank.train + bank.eval, strict=True):
        assert np.array_equal(a.forward, b.forward)
    other = crf.curve_bank.__wrapped__(crf.BANK_SEED + 1)
    assert not np.array_equal(other.train[5].forward, bank.train[5].forward)


def test_committed_basis_is_what_the_generator_produces():
    raw = crf.ASSET.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == crf.BASIS_SHA256
    info = json.loads(crf.ASSET.with_suffix(".json").read_text())
    assert info["sha256"] == crf.BASIS_SHA256
    assert np.load(crf.ASSET, allow_pickle=False).shape == (27, crf.SAMPLES)
    assert info["train_curves"] == [c.name for c in crf.curve_bank().train]
    # Regenerate in a real subprocess; one BLAS thread, because a multi-threaded SVD on two busy cores is 10x slower.
    # The check allows 1e-9: BLAS builds may differ in the last bits.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "zoo.data.make_basis", "--check"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "max |regenerated - committed|" in done.stdout


def test_basis_reconstructs_held_back_curves(bank):
    basis = load_inverse_basis()
    assert basis.components.shape == (crf.SAMPLES, 11) and basis.g0.shape == basis.grid.shape == (crf.SAMPLES,)
    assert np.allclose(basis.components.T @ basis.components, np.eye(11), atol=1e-10)
    assert np.array_equal(basis.grid, crf.GRID)
    rows = np.load(crf.ASSET)
    in_family = tuple(c for c in bank.eval if c.family != crf.HELD_OUT_FAMILY)
    other_family = tuple(c for c in bank.eval if c.family == crf.HELD_OUT_FAMILY)
    near = reconstruction_errors(rows, in_family, 11)
    far = reconstruction_errors(rows, other_family, 11)
    for label, e in (("in-family", near), (crf.HELD_OUT_FAMILY, far)):
        print(
            f"\nheld-out {label} curves ({e['count']}), K=11, max-abs error: {e['max_abs']:.2e} "
            f"(median {e['median_max_abs']:.2e}); after the monotone fix {e['max_abs_after_fix']:.2e} "
            f"(median {e['median_max_abs_after_fix']:.2e})"
        )
    print(f"explained variance {basis.explained_variance:.6f}")
    # The fix shifts every difference when one is negative, so it can amplify a tiny projection error on a curve
    # with a flat foot (steep gammas); hence the looser bound after it.
    assert near["max_abs"] < 0.005 and near["max_abs_after_fix"] < 0.03
    assert far["max_abs"] < 0.06 and far["max_abs_after_fix"] < 0.06
    assert basis.explained_variance > 0.9999
    weights = basis.project(in_family[0].inverse)
    assert np.abs(basis.curve(weights) - in_family[0].inverse).max() < 0.01


def test_apply_curve_follows_the_singlehdr_lookup(bank):
    curve = bank.train[7].forward
    assert np.array_equal(crf.apply_curve(crf.GRID, curve), curve.astype(np.float32))
    x = np.random.default_rng(0).random(1000).astype(np.float32)
    assert np.abs(crf.apply_curve(x, curve) - np.interp(x, crf.GRID, curve)).max() < 1e-6
    mid = crf.apply_curve(np.float32([0.5 / 1023]), curve)[0]
    assert mid == pytest.approx((curve[0] + curve[1]) / 2, abs=1e-7)
    ends = crf.apply_curve(np.float32([-0.2, 1.0, 1.5]), curve).tolist()
    assert ends == [0.0, pytest.approx(1.0), pytest.approx(1.0)]


def test_increase_repairs_a_dip_and_keeps_monotone_curves():
    dipped = crf.GRID + 0.02 * np.sin(40 * crf.GRID)
    fixed = crf.increase(dipped)
    assert fixed[0] == 0.0 and fixed[-1] == pytest.approx(1.0) and np.diff(fixed).min() >= 0
    assert np.abs(crf.increase(crf.GRID**2) - crf.GRID**2).max() < 1e-12


def test_reads_the_official_invemor_file(reference_data):
    path = reference_data / "SingleHDR" / "invemor.txt"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    basis = load_inverse_basis(str(path))
    assert basis.sha256 == crf.OFFICIAL_INVEMOR_SHA256
    assert basis.components.shape == (1024, 11) and basis.g0.shape == (1024,)
    assert np.abs(basis.grid - crf.GRID).max() < 1e-6
    assert basis.g0[0] == pytest.approx(0.0, abs=1e-6) and basis.g0[-1] == pytest.approx(1.0, abs=1e-6)
    assert np.diff(basis.g0).min() >= 0
    assert load_inverse_basis(str(path), k=25).components.shape == (1024, 25)
    # the EMoR model reconstructs our smooth curves too (it was fitted to 201 real cameras)
    srgb = crf.inverse_curve(crf.srgb_curve())
    assert np.abs(basis.curve(basis.project(srgb)) - srgb).max() < 0.02


def _write_invemor(path, counts):
    blocks = []
    for name, n in counts:
        values = np.linspace(0, 1, n)
        lines = [" ".join(f"{v:e}" for v in values[i : i + 4]) for i in range(0, n, 4)]
        blocks.append(f"{name} =\n" + "\n".join(lines))
    path.write_text("\n".join(blocks) + "\n")
    return path


def test_bad_curve_files_fail_with_one_line_naming_the_file(tmp_path):
    head = [("B", 1024), ("g0", 1024)]
    short = _write_invemor(tmp_path / "short.txt", head + [(f"hinv({i})", 1000) for i in range(1, 12)])
    with pytest.raises(ZooError, match=r"short\.txt.*hinv\(1\).*1000 values, expected 1024"):
        load_inverse_basis(str(short))
    few = _write_invemor(tmp_path / "few.txt", head + [(f"hinv({i})", 1024) for i in range(1, 5)])
    with pytest.raises(ZooError, match=r"few\.txt.*hinv\(5\).*missing"):
        load_inverse_basis(str(few))
    garbage = tmp_path / "garbage.txt"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ZooError, match="garbage.txt"):
        load_inverse_basis(str(garbage))
    with pytest.raises(ZooError, match="missing.txt: no such file"):
        load_inverse_basis(str(tmp_path / "missing.txt"))
    with pytest.raises(ZooError, match="k must be"):
        load_inverse_basis(None, k=0)
    for error in (short, few, garbage):
        with pytest.raises(ZooError) as info:
            load_inverse_basis(str(error))
        assert "\n" not in str(info.value)
