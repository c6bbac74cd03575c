"""Offline evaluation through the library's harness (include/magpie/split.h, eval.h), as `magpie eval` runs it."""

import ctypes

import numpy as np

from . import _lib
from ._util import MagpieError, Progress, check, events_view, new_error
from .data import Dataset
from .model import Model


def _parse(fn, text, what, allowed):
    out = ctypes.c_int()
    if fn(str(text).encode(), ctypes.byref(out)) != 0:
        raise MagpieError(-2, f"{what}: expected {allowed}, got {text!r}")  # MP_EINVAL
    return out.value


def evaluate(model, data, protocol="loo", k=(5, 10, 20), *, seed=42, history="exclude", sampled=0,
             cold_threshold=5, on="test", fit_on="train", weights=None, half_life_days=0.0, ratio=None, share=None,
             cutoff=None, min_events=None, folds=None, fold=None, n_threads=0, show_progress=True, callback=None,
             **params):
    """Splits `data`, fits the model on the training part and evaluates it on the held-out part, exactly as
    `magpie eval` does with the same options (same split, same metrics, same numbers).

    model: a model name with its parameters as keywords (evaluate("als", data, factors=32)), or a Model (fitted
    in place on the training part). data: a Dataset, store path, DataFrame of events or sparse matrix.
    protocol: loo, temporal, ratio, cold-item, cold-user or kfold (with ratio, share, cutoff, min_events, folds,
    fold as `magpie eval --help` describes); k: cut-offs; history: exclude, zero or keep; sampled: N sampled
    negatives per target instead of the full ranking (0); on: "test" or "valid"; fit_on: "train" or
    "train+valid"; weights: event-type weights "view=1,purchase=10"; n_threads: 0 = default.

    Returns a pandas DataFrame with one row per group (overall, cold, warm) and cut-off: columns group, k, users,
    hr, precision, recall, ndcg, map, mrr, coverage, novelty, ild, gini, auc, ratings, rmse, mae (NaN where a
    metric does not apply). df.attrs holds protocol, sampled, sampled_negatives, history, n_items, skipped_users
    and the split sizes."""
    import pandas as pd
    lib = _lib.load()
    if isinstance(model, Model):
        if params:
            raise TypeError("give parameters either to the Model or to evaluate, not both")
        m = model
    else:
        m = Model(str(model), **params)
    ds = Dataset.coerce(data, show_progress, callback)
    if on not in ("test", "valid"):
        raise ValueError(f"on: expected 'test' or 'valid', got {on!r}")
    if fit_on not in ("train", "train+valid"):
        raise ValueError(f"fit_on: expected 'train' or 'train+valid', got {fit_on!r}")
    on_valid = on == "valid"
    if on_valid and fit_on != "train":
        raise ValueError("fit_on='train+valid' cannot be combined with on='valid' (the targets would be fitted)")

    kind = _parse(lib.mp_split_kind_parse, protocol, "protocol", "loo, temporal, ratio, cold-item, cold-user or kfold")
    so = _lib.mp_split_opts()
    lib.mp_split_opts_default(ctypes.byref(so), kind)
    so.seed = int(seed)
    if ratio is not None:
        so.ratio = float(ratio)
    if share is not None:
        so.share = float(share)
    if cutoff is not None:
        so.cutoff = int(cutoff)
    if min_events is not None:
        so.min_events = int(min_events)
    if folds is not None:
        so.n_folds = int(folds)
    if fold is not None:
        so.fold = int(fold)
    loo = _parse(lib.mp_split_kind_parse, "loo", "protocol", "loo")
    so.with_valid = 1 if (kind == loo or on_valid) else 0

    eo = _lib.mp_eval_opts()
    lib.mp_eval_opts_default(ctypes.byref(eo))
    err = new_error()
    ks = k if isinstance(k, str) else ",".join(str(int(x)) for x in np.atleast_1d(k))
    check(lib.mp_eval_parse_ks(ctypes.byref(eo), ks.encode(), err), err)
    eo.history = _parse(lib.mp_history_mode_parse, history, "history", "exclude, zero or keep")
    eo.sampled_negatives = int(sampled)
    eo.seed = int(seed)
    eo.cold_threshold = int(cold_threshold)
    eo.n_threads = int(n_threads)

    w = _lib.mp_weighting()
    lib.mp_weighting_default(ctypes.byref(w))
    w.half_life_days = float(half_life_days)
    if weights:
        check(lib.mp_weighting_parse(ctypes.byref(w), str(weights).encode(), err), err)

    sp = _lib.mp_split()
    history_ptr = ctypes.POINTER(_lib.mp_interaction)()
    n_history = _lib.c_size()
    ts = None
    prog = Progress(show_progress, callback)
    try:
        check(lib.mp_split_make(ds._ptr, ctypes.byref(so), ctypes.byref(sp), err), err)
        target, n_target = (sp.valid, sp.n_valid) if on_valid else (sp.test, sp.n_test)
        if n_target == 0:
            raise MagpieError(-10, f"the {'validation' if on_valid else 'test'} part of the {protocol} split is "
                                   f"empty: nothing to evaluate")  # MP_EEMPTY
        if not on_valid:
            check(lib.mp_split_merge(sp.train, sp.n_train, sp.valid, sp.n_valid, ctypes.byref(history_ptr),
                                     ctypes.byref(n_history), err), err)
        if fit_on == "train+valid":
            fit_ev = events_view(history_ptr, n_history.value)
        else:
            fit_ev = events_view(sp.train, sp.n_train)
        from .data import TrainSet
        ts = TrainSet(ds, fit_ev, weighting=w, n_threads=n_threads)
        if not on_valid and fit_on == "train" and sp.n_valid > 0:
            ts.data.valid = sp.valid
            ts.data.n_valid = sp.n_valid
        with m._lock.write():
            rc = lib.mp_model_fit(m._m, ctypes.byref(ts.data), prog.pointer(), err)
        prog.raise_pending()
        check(rc, err)
        m.dataset = ds
        ed = _lib.mp_eval_data()
        ed.n_users, ed.n_items = ds.n_users, ds.n_items
        if on_valid:
            ed.history, ed.n_history = sp.train, sp.n_train
        else:
            ed.history, ed.n_history = history_ptr, n_history.value
        ed.train, ed.n_train = sp.train, sp.n_train
        ed.test, ed.n_test = target, n_target
        d = ds._ptr.contents
        if ts.data.n_categories > 1:
            ed.item_category = ts.data.item_category
        elif d.n_categories > 1:
            ed.item_category = d.item_category
        eo.progress = prog.pointer()
        res = _lib.mp_eval_result()
        with m._lock.read():
            rc = lib.mp_evaluate(m._m, ctypes.byref(ed), ctypes.byref(eo), ctypes.byref(res), err)
        prog.raise_pending()
        check(rc, err)
        sizes = {"train": int(sp.n_train), "valid": int(sp.n_valid), "test": int(sp.n_test)}
    finally:
        if ts is not None:
            ts.close()
        if history_ptr:
            _lib.free(history_ptr)
        lib.mp_split_free(ctypes.byref(sp))

    rows = []
    for gname in ("overall", "cold", "warm"):
        g = getattr(res, gname)
        for j in range(res.n_ks):
            t = g.at[j]
            row = {"group": gname, "k": int(res.ks[j]), "users": int(g.n_users)}
            row.update({name: float(getattr(t, name)) for name in _lib.TOPK_METRICS})
            row.update({"auc": float(g.auc), "ratings": int(g.n_ratings), "rmse": float(g.rmse), "mae": float(g.mae)})
            rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs.update({"model": m.name, "protocol": protocol, "on": on, "sampled": bool(res.sampled),
                     "sampled_negatives": int(res.sampled_negatives), "history": history,
                     "n_items": int(res.n_items), "skipped_users": int(res.n_skipped), "split": sizes})
    return df
