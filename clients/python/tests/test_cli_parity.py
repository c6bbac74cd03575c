"""The package against the CLI on the same store: a model fitted from Python is the model `magpie train` writes
(same seed), model files go both ways (Python -> `magpie recommend`, `magpie train` -> Python), and
magpie.evaluate gives the numbers of `magpie eval`."""

import math

import numpy as np
import pytest

import magpie


def cli_lists(cli, db, model_path, n_users, n=10):
    rows = cli.json_lines("recommend", "--db", db, "--model", model_path, "--users", n_users, "--n", n, "--json",
                          "--explain")
    return {r["user"]: r["items"] for r in rows}


def py_lists(model, ds, users, n=10):
    ids, scores = model.recommend([ds.user_index(u) for u in users], dataset=ds, N=n)
    return ids, scores


def test_als_from_python_is_the_cli_model(cli, shop, tmp_path):
    params = dict(factors=16, iterations=6, seed=11)
    cli_path = tmp_path / "cli.mpm"
    cli("train", "--db", shop, "--model", "als", "--param", ",".join(f"{k}={v}" for k, v in params.items()),
        "--out", cli_path, "--quiet")
    ds = magpie.Dataset.from_store(shop)
    py = magpie.Model("als", **params).fit(ds, show_progress=False)
    from_cli = magpie.Model.load(cli_path)
    assert from_cli.name == "als" and from_cli.n_items == py.n_items == ds.n_items
    a, b = py.item_factors, from_cli.item_factors
    assert a.shape == (ds.n_items, 16)
    # bit-identical: the same code path (mp_dataset_load, mp_train_set_build, mp_model_fit) on the same data
    assert np.array_equal(a, b), f"largest difference {np.abs(a - b).max()}"
    # the same lists for every user, from the model fitted here and the one loaded from the CLI's file
    users = np.arange(ds.n_users)
    ids_py, sc_py = py.recommend(users, dataset=ds, N=10)
    ids_cli, sc_cli = from_cli.recommend(users, dataset=ds, N=10)
    assert (ids_py == ids_cli).all()
    np.testing.assert_allclose(sc_py, sc_cli, atol=1e-5)
    # and what `magpie recommend` prints for the first users of the store
    printed = cli_lists(cli, shop, cli_path, 20)
    assert len(printed) == 20
    for ext, items in printed.items():
        u = ds.user_index(ext)
        assert [ds.item_ids[i] for i in ids_py[u][:len(items)]] == [x["item"] for x in items], ext
        np.testing.assert_allclose(sc_py[u][:len(items)], [x["score"] for x in items], rtol=1e-4)


def test_model_saved_from_python_loads_in_magpie_recommend(cli, shop, tmp_path):
    ds = magpie.Dataset.from_store(shop)
    model = magpie.Model("itemknn", k=50).fit(ds, show_progress=False)
    path = tmp_path / "knn.mpm"
    model.save(path)
    printed = cli_lists(cli, shop, path, 12, n=5)
    assert len(printed) == 12
    for ext, items in printed.items():
        u = ds.user_index(ext)
        ids, scores = model.recommend(ext, dataset=ds, N=5)
        assert [ds.item_ids[i] for i in ids] == [x["item"] for x in items]
        np.testing.assert_allclose(scores, [x["score"] for x in items], rtol=1e-4)
        assert [model.explain(u, i, dataset=ds) for i in ids] == [x["reason"] for x in items]
        assert all(x["reason"] for x in items)
    # loaded back here, the file gives the same lists
    again = magpie.load(path)
    users = np.arange(ds.n_users)
    assert (again.recommend(users, dataset=ds)[0] == model.recommend(users, dataset=ds)[0]).all()


def _close(a, b):
    if a is None or b is None:
        return a is None and (b is None or math.isnan(b))
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-9)


@pytest.mark.parametrize("name,param,protocol", [("pop", "", "loo"), ("ease", "lambda=50", "ratio")])
def test_evaluate_gives_the_numbers_of_magpie_eval(cli, shop, name, param, protocol):
    args = ["eval", "--db", shop, "--model", name, "--protocol", protocol, "--k", "5,10", "--json", "--quiet",
            "--seed", 5]
    if param:
        args += ["--param", param]
    want = cli.json_lines(*args)[0]
    params = dict(kv.split("=") for kv in param.split(",")) if param else {}
    df = magpie.evaluate(name, shop, protocol=protocol, k=(5, 10), seed=5, show_progress=False, **params)
    assert list(df["k"]) == [5, 10] * 3 and list(df["group"]) == ["overall"] * 2 + ["cold"] * 2 + ["warm"] * 2
    assert df.attrs["skipped_users"] == want["skipped_users"] and df.attrs["n_items"] == want["n_items"]
    for _, row in df.iterrows():
        g = want["groups"][row["group"]]
        assert row["users"] == g["users"]
        for metric in ("auc", "rmse", "mae"):
            assert _close(g[metric], row[metric]), (row["group"], metric, g[metric], row[metric])
        for metric, value in g["at"][str(row["k"])].items():
            assert _close(value, row[metric]), (row["group"], row["k"], metric, value, row[metric])
    assert df.loc[df.group == "overall", "ndcg"].iloc[1] > 0
