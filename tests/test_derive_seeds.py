"""Monte Carlo errors of derive are reproducible per object (independent of the other rows)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table, vstack
from test_derive import _synthetic_lines

from xmpspec.config import load_config
from xmpspec.errors import InputError
from xmpspec.physics.derive import DERIVED_COLUMNS, derive_table, object_rng

MC_DRAWS = 60


@pytest.fixture(scope="module")
def cfg():
    return load_config(search_cwd=False)


@pytest.fixture(scope="module")
def table(cfg) -> Table:
    """Six objects with [OIII]4364 (direct method + MC), one without, different nebulae."""
    rows = []
    params = [(12000.0, 0.05), (15000.0, 0.15), (18000.0, 0.0), (14000.0, 0.3),
              (20000.0, 0.1), (16000.0, 0.2), (13000.0, 0.1)]
    for k, (te, ebv) in enumerate(params):
        obs, _ = _synthetic_lines(cfg, te=te, ebv=ebv)
        row = {"name": f"OBJ{k:02d}", "z": 0.01 + 0.005 * k, "z_err": 1e-4}
        for key, v in obs.items():
            row[f"f_{key}"] = v
            row[f"f_{key}_err"] = (0.03 + 0.01 * k) * v
        row["f_nii6585"] = 0.01 * obs["ha"]
        row["f_nii6585_err"] = 0.002 * obs["ha"]
        rows.append(row)
    t = Table(rows=rows, names=list(rows[0]))
    t["f_oiii4364"][-1] = 0.2 * t["f_oiii4364_err"][-1]  # no direct method for the last one
    return t


def _assert_same(a: Table, b: Table) -> None:
    """Bit-identical derived columns (values, masks)."""
    assert len(a) == len(b)
    for name in DERIVED_COLUMNS:
        ca, cb = a[name], b[name]
        ma, mb = np.ma.getmaskarray(ca), np.ma.getmaskarray(cb)
        np.testing.assert_array_equal(ma, mb, err_msg=name)
        va, vb = np.ma.getdata(ca)[~ma], np.ma.getdata(cb)[~mb]
        if va.dtype.kind == "f":
            np.testing.assert_array_equal(va, vb, err_msg=name)
        else:
            assert list(map(str, va)) == list(map(str, vb)), name


def test_row_results_do_not_depend_on_the_other_rows(cfg, table):
    whole = derive_table(table, cfg, mc_draws=MC_DRAWS)
    # the Monte Carlo ran: errors exist for the six objects with [OIII]4364
    assert np.count_nonzero(~np.ma.getmaskarray(whole["oh_direct_err"])) == 6
    assert np.all(np.ma.getdata(whole["oh_direct_err"])[:6] > 0)
    # each row alone
    alone = vstack([derive_table(table[k:k + 1], cfg, mc_draws=MC_DRAWS)
                    for k in range(len(table))], metadata_conflicts="silent")
    _assert_same(whole, alone)
    # shuffled, then put back in order
    perm = np.random.default_rng(3).permutation(len(table))
    shuffled = derive_table(table[perm], cfg, mc_draws=MC_DRAWS)
    assert list(shuffled["name"]) == list(table["name"][perm])
    _assert_same(whole, shuffled[np.argsort(perm)])
    # split in two chunks as a batch would
    chunks = vstack([derive_table(table[:3], cfg, mc_draws=MC_DRAWS),
                     derive_table(table[3:], cfg, mc_draws=MC_DRAWS)],
                    metadata_conflicts="silent")
    _assert_same(whole, chunks)


def test_streams_differ_between_objects_and_seeds(cfg, table):
    # two objects with the same fluxes but different names get different MC draws
    twin = table[[1, 1]]
    twin["name"] = ["TWIN_A", "TWIN_B"]
    out = derive_table(twin, cfg, mc_draws=MC_DRAWS)
    assert out["oh_direct"][0] == out["oh_direct"][1]          # nominal solution
    assert out["oh_direct_err"][0] != out["oh_direct_err"][1]  # independent draws
    base = derive_table(table[:2], cfg, mc_draws=MC_DRAWS)
    other = derive_table(table[:2], cfg, mc_draws=MC_DRAWS, seed=12345)
    assert base["te_oiii_err"][0] != other["te_oiii_err"][0]
    assert base["te_oiii"][0] == other["te_oiii"][0]
    # the configuration's seed is the default
    same = derive_table(table[:2], cfg, mc_draws=MC_DRAWS, seed=int(cfg["abundances"]["mc_seed"]))
    _assert_same(base, same)


def test_object_rng():
    a = object_rng(7, "J1234+5678").standard_normal(4)
    np.testing.assert_array_equal(a, object_rng(7, " J1234+5678").standard_normal(4))
    assert not np.array_equal(a, object_rng(8, "J1234+5678").standard_normal(4))
    assert not np.array_equal(a, object_rng(7, "J1234+5679").standard_normal(4))
    # the same in every process (Python's str hash is salted per process: not used)
    here = int(object_rng(20240601, "XMP0219-0059").integers(0, 10**12))
    code = ("from xmpspec.physics.derive import object_rng; "
            "print(object_rng(20240601, 'XMP0219-0059').integers(0, 10**12))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True)
    assert int(run.stdout.strip()) == here
    for bad in (-1, 1.5, "x"):
        with pytest.raises(InputError, match="non-negative integer"):
            object_rng(bad, "A")
