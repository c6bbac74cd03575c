"""The package's own behaviour: implicit-style use on a scipy.sparse matrix, DataFrames of events, the registry,
errors as MagpieError, progress callbacks, and the library search."""

import os
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import magpie
from conftest import PKG_ROOT


@pytest.fixture(scope="module")
def user_items():
    """A 120 x 80 implicit matrix with structure: users of group g like items of group g (4 groups)."""
    rng = np.random.default_rng(7)
    rows, cols, vals = [], [], []
    for u in range(120):
        g = u % 4
        liked = rng.choice(np.arange(g * 20, g * 20 + 20), size=8, replace=False)
        noise = rng.choice(80, size=2, replace=False)
        for i in np.concatenate([liked, noise]):
            rows.append(u), cols.append(int(i)), vals.append(float(rng.integers(1, 5)))
    m = sp.csr_matrix((vals, (rows, cols)), shape=(120, 80), dtype=np.float32)
    m.sum_duplicates()
    return m


def test_registry_is_the_librarys(cli):
    models = magpie.models()
    text = cli("train", "--help").stdout
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("  ") and not line.startswith("   ")
              and not line.strip().startswith("-")]
    assert list(models) == listed
    for name, info in models.items():
        for p in info.params:
            assert f"      {p.name}={p.default}  {p.help}" in text, (name, p.name)
    als = {p.name: p for p in models["als"].params}
    assert als["solver"].type == "choice" and "cg" in als["solver"].choices
    assert als["factors"].type in ("uint", "int") and als["factors"].describe


def test_implicit_style_fit_and_recommend(user_items):
    model = magpie.Model("als", factors=8, iterations=8, seed=3)
    assert model.fit(user_items, show_progress=False) is model
    assert model.is_fitted and model.n_items == 80
    ids, scores = model.recommend(5, user_items[5], N=10)
    assert ids.shape == (10,) and ids.dtype == np.int32 and scores.dtype == np.float32
    assert not set(ids) & set(user_items[5].indices), "liked items are filtered by default"
    assert (np.diff(scores) <= 0).all()
    assert np.mean(ids // 20 == 5 % 4) >= 0.7, "the user's own group ranks first"
    # keeping liked items: they come back
    ids_all, _ = model.recommend(5, user_items[5], N=10, filter_already_liked_items=False)
    assert set(ids_all) & set(user_items[5].indices)
    # batch = the single calls, rows padded when fewer items are left
    users = np.arange(0, 120, 7)
    b_ids, b_scores = model.recommend(users, user_items[users], N=10)
    assert b_ids.shape == (len(users), 10)
    for j, u in enumerate(users):
        s_ids, s_scores = model.recommend(int(u), user_items[int(u)], N=10)
        assert (b_ids[j] == s_ids).all()
        np.testing.assert_array_equal(b_scores[j], s_scores)
    ids, scores = model.recommend(0, user_items[0], N=100)
    assert len(ids) == 80 - user_items[0].nnz
    p_ids, p_scores = model.recommend([0], user_items[[0]], N=100)
    assert (p_ids[0, len(ids):] == -1).all() and np.isnan(p_scores[0, len(ids):]).all()
    # filter_items and items
    banned = ids[:3]
    f_ids, _ = model.recommend(0, user_items[0], N=10, filter_items=banned)
    assert not set(f_ids) & set(banned) and (f_ids[:7] == ids[3:10]).all()
    only = np.arange(40, 60)
    o_ids, _ = model.recommend(0, user_items[0], N=10, items=only)
    assert set(o_ids) <= set(only) - set(user_items[0].indices)
    with pytest.raises(ValueError, match="one row per user"):
        model.recommend([1, 2], user_items[1], N=3)


def test_similar_items_and_explain(user_items):
    model = magpie.Model("itemknn", k=20).fit(user_items, show_progress=False)
    ids, scores = model.similar_items(3, N=5)
    assert len(ids) == 5 and 3 not in ids and (np.diff(scores) <= 0).all()
    assert np.mean(ids // 20 == 0) >= 0.8
    b_ids, _ = model.similar_items([3, 45], N=5)
    assert b_ids.shape == (2, 5) and (b_ids[0] == ids).all()
    rec, _ = model.recommend(2, user_items[2], N=3)
    reason = model.explain(2, int(rec[0]), user_items[2])
    assert reason.startswith("because you rated item ")
    hist = set(user_items[2].indices)
    assert int(reason.split("item ")[1].split()[0]) in hist


def test_every_model_fits_and_recommends(user_items):
    for name, info in magpie.models().items():
        # short runs: the parameters that count passes over the data (read from the descriptors) set to 1
        passes = {p.name: 1 for p in info.params if p.name in ("epochs", "iterations")}
        model = magpie.Model(name, **passes)
        try:
            model.fit(user_items, show_progress=False)
        except magpie.MagpieError as e:
            pytest.fail(f"{name}: {e}")
        ids, scores = model.recommend(np.arange(4), user_items[:4], N=5)
        assert ids.shape == (4, 5) and (ids[:, 0] >= 0).all(), name


def test_dataframe_events_with_titles():
    rng = np.random.default_rng(1)
    rows = []
    for u in range(60):
        for k in range(6):
            i = (u % 3) * 10 + int(rng.integers(0, 10))
            rows.append({"user": f"u{u}", "item": f"sku-{i}", "type": "purchase" if k % 2 else "view",
                         "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=u * 10 + k)})
    df = pd.DataFrame(rows)
    titles = {f"sku-{i}": f"Product {i}" for i in range(30)}
    ds = magpie.Dataset.from_events(df, item_titles=titles)
    assert ds.n_users == 60 and ds.n_items == len(df["item"].unique()) and ds.n_events == len(df)
    assert ds.user_ids[0] == "u0" and ds.item_index("sku-%d" % 0) >= 0
    assert set(ds.events["type"]) == {magpie.event_types().index("view"), magpie.event_types().index("purchase")}
    assert ds.events["ts"].min() == int(pd.Timestamp("2024-01-01", tz="UTC").timestamp())
    model = magpie.Model("itemknn").fit(ds, show_progress=False)
    ids, _ = model.recommend("u4", N=3)
    assert len(ids) == 3 and not set(ids) & set(ds.history(ds.user_index("u4"))["item"])
    reason = model.explain("u4", int(ids[0]))
    assert "Product " in reason and ("bought" in reason or "viewed" in reason), reason
    with pytest.raises(ValueError, match="type 'bogus'"):
        magpie.Dataset.from_events(pd.DataFrame({"user": [1], "item": [2], "type": ["bogus"]}))
    with pytest.raises(ValueError, match="no column 'item'"):
        magpie.Dataset.from_events(pd.DataFrame({"user": [1]}))


def test_errors_are_magpie_errors(tmp_path, user_items):
    with pytest.raises(magpie.MagpieError) as e:
        magpie.Model("nosuch")
    assert e.value.code == -2 and e.value.name == "MP_EINVAL" and "pop" in e.value.message
    with pytest.raises(magpie.MagpieError) as e:
        magpie.Model("als", factors=0)
    assert e.value.name == "MP_EINVAL" and "factors" in e.value.message
    with pytest.raises(magpie.MagpieError) as e:
        magpie.load(tmp_path / "missing.mpm")
    assert e.value.name == "MP_ENOTFOUND"
    bad = tmp_path / "bad.mpm"
    bad.write_bytes(b"not a model file at all" * 10)
    with pytest.raises(magpie.MagpieError) as e:
        magpie.load(bad)
    assert e.value.name == "MP_ECORRUPT"
    with pytest.raises(magpie.MagpieError) as e:
        magpie.Model("als").fit(sp.csr_matrix((5, 5), dtype=np.float32), show_progress=False)
    assert e.value.name == "MP_EEMPTY"
    with pytest.raises(magpie.MagpieError) as e:
        magpie.Model("pop").recommend(0, N=3)
    assert e.value.name == "MP_EINVAL" and "not fitted" in e.value.message
    with pytest.raises(magpie.MagpieError) as e:
        magpie.Dataset.from_store(tmp_path / "nostore.db")
    assert e.value.name == "MP_ENOTFOUND"
    model = magpie.Model("itemknn").fit(user_items, show_progress=False)
    with pytest.raises(magpie.MagpieError) as e:
        model.similar_items(1000)
    assert e.value.name == "MP_ENOTFOUND"


def test_progress_reaches_the_callback(shop, user_items):
    seen = []
    magpie.Model("als", iterations=4).fit(shop, show_progress=False,
                                          callback=lambda *a: seen.append(a))
    stages = {s for s, *_ in seen}
    assert "fit" in stages and "load" in stages, stages
    fit = [(d, t) for s, d, t, _ in seen if s == "fit"]
    assert fit[-1][0] == fit[-1][1] > 0
    model = magpie.Model("itemknn").fit(user_items, show_progress=False)
    seen.clear()
    model.recommend(np.arange(120), user_items, N=5, callback=lambda *a: seen.append(a))
    assert seen[-1][:3] == ("recommend", 120, 120)

    def boom(*a):
        raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        magpie.Model("als", iterations=2).fit(user_items, show_progress=False, callback=boom)


def test_concurrent_reads_from_threads(user_items):
    model = magpie.Model("als", factors=8, seed=2).fit(user_items, show_progress=False)
    want, _ = model.recommend(np.arange(120), user_items, N=10)
    results = [None] * 4

    def work(j):
        results[j] = model.recommend(np.arange(120), user_items, N=10, n_threads=1)[0]
    threads = [threading.Thread(target=work, args=(j,)) for j in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert (r == want).all()


def test_library_not_found_says_what_to_build(tmp_path):
    env = dict(os.environ, MAGPIE_LIB=str(tmp_path / "nowhere" / "libmagpie.so"), PYTHONPATH=PKG_ROOT)
    env.pop("LD_PRELOAD", None)
    r = subprocess.run([sys.executable, "-c", "import magpie; magpie.models()"], capture_output=True, text=True,
                       env=env)
    assert r.returncode != 0
    assert "LibraryNotFound" in r.stderr and "make" in r.stderr and "MAGPIE_LIB" in r.stderr
    assert str(tmp_path / "nowhere") in r.stderr
