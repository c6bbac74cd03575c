"""Models: every model of the library's registry, by name, with keyword parameters from its descriptor table."""

import ctypes
import os
import time
from collections import namedtuple

import numpy as np

from . import _lib
from ._util import MagpieError, Progress, RWLock, check, events_ptr, new_error, ptr
from .data import Dataset, _type_codes

_PARAM_TYPES = ("bool", "int", "uint", "u64", "double", "choice")  # mp_param_type order
_TUNE = ("none", "linear", "log", "choices")  # mp_param_scale order

ParamInfo = namedtuple("ParamInfo", "name default help type describe choices alias allow_auto tune")
ParamInfo.__doc__ = """One parameter of a model as its descriptor table (mp_param_info) declares it: name, default
(text, as `magpie train --param` takes it), help, type ("bool", "int", "uint", "u64", "double", "choice"),
describe (bounds or choices in words), choices (tuple, for "choice"), alias, allow_auto, tune (the default
`magpie tune` search range, or None)."""

ModelInfo = namedtuple("ModelInfo", "name summary params")


def _s(b):
    return b.decode() if b is not None else None


def models():
    """{name: ModelInfo(name, summary, params)} for every model in the library's registry, in registry order;
    params is a tuple of ParamInfo."""
    lib = _lib.load()
    reg = lib.mp_model_registry()
    out = {}
    i = 0
    while reg[i]:
        ops = reg[i].contents
        params = []
        for k in range(ops.n_params):
            p = ops.params[k]
            buf = ctypes.create_string_buffer(512)
            describe = _s(lib.mp_param_describe(ctypes.byref(p), buf, len(buf)))
            tune = ctypes.create_string_buffer(512)
            has_tune = lib.mp_param_tune_spec(ctypes.byref(p), tune, len(tune))
            choices = tuple(_s(p.choices[c]) for c in range(p.n_choices)) if p.choices else ()
            params.append(ParamInfo(_s(p.name), _s(p.default_value), _s(p.help),
                                    _PARAM_TYPES[p.type] if 0 <= p.type < len(_PARAM_TYPES) else str(p.type),
                                    describe, choices, _s(p.alias), bool(p.allow_auto),
                                    tune.value.decode() if has_tune else None))
        name = _s(ops.name)
        out[name] = ModelInfo(name, _s(ops.summary), tuple(params))
        i += 1
    return out


def _param_text(value):
    """A Python value as the text mp_model_set_param parses."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _history_from_rows(rows, event_type="rating"):
    """Events per row of a sparse matrix (one per stored value > 0, as Dataset.from_csr): (events, offsets)."""
    import scipy.sparse as sp
    rows = sp.csr_matrix(rows)
    rows.sort_indices()
    n = rows.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    parts = []
    code = _type_codes([event_type])[0]
    for r in range(n):
        a, b = rows.indptr[r], rows.indptr[r + 1]
        idx, val = rows.indices[a:b], rows.data[a:b]
        keep = val > 0
        counts[r] = int(keep.sum())
        parts.append((idx[keep], val[keep]))
    ev = np.zeros(int(counts.sum()), dtype=_lib.INTERACTION_DTYPE)
    off = np.zeros(n + 1, dtype=np.int64)
    off[1:] = np.cumsum(counts)
    for r, (idx, val) in enumerate(parts):
        s = slice(off[r], off[r + 1])
        ev["user"][s] = r
        ev["item"][s] = idx
        ev["value"][s] = val
    ev["has_value"] = 1
    ev["type"] = code
    return ev, off


class Model:
    """A recommender from the library's registry: Model("als", factors=64, seed=7).

    Shaped like implicit's models: fit(user_items), recommend(userid, user_items, N=10) -> (ids, scores),
    similar_items(itemid, N=10) -> (ids, scores); plus explain, save / load (the model files of `magpie train`,
    `magpie recommend` and `magpie serve`), score and item_factors. Parameters are the model's own (see
    magpie.models()[name].params or `magpie train --model NAME --help`); values are checked by the library and a
    bad one raises MagpieError (MP_EINVAL) naming it.

    Threads: reading calls (recommend, similar_items, explain, score, save) may run at once from several Python
    threads (the GIL is released inside the library); fit and load wait for them and run alone.
    """

    def __init__(self, name, **params):
        lib = _lib.load()
        self._m = None
        self._lock = RWLock()
        err = new_error()
        m = ctypes.c_void_p()
        check(lib.mp_model_create(ctypes.byref(m), str(name).encode(), err), err)
        self._m = m
        self.name = str(name)
        self.params = {}
        self.dataset = None  # the Dataset of the last fit (histories for recommend when no user_items are given)
        self.fit_seconds = None
        self.set_params(**params)

    @classmethod
    def _wrap(cls, handle):
        self = cls.__new__(cls)
        self._m = handle
        self._lock = RWLock()
        ops = _lib.load().mp_model_ops_of(handle).contents
        self.name = ops.name.decode()
        self.params = {}
        self.dataset = None
        self.fit_seconds = None
        return self

    @property
    def param_info(self):
        return models()[self.name].params

    def set_params(self, **params):
        """Sets parameters by name (or alias); the model keeps its previous value on an error."""
        lib = _lib.load()
        with self._lock.write():
            for key, value in params.items():
                err = new_error()
                text = _param_text(value)
                check(lib.mp_model_set_param(self._m, key.encode(), text.encode(), err), err)
                self.params[key] = text
        return self

    # --- fitting ------------------------------------------------------------------------------------------------

    def fit(self, user_items, show_progress=True, callback=None, n_threads=0, valid=None):
        """Fits from scratch on a Dataset, a store path, a DataFrame of events or a scipy.sparse user x item
        matrix (implicit's orientation: rows are users). callback(stage, done, total, unit) gets the library's
        progress; show_progress draws it with tqdm when tqdm is installed. n_threads: threads the model may use
        (0: all cores, like `magpie train`). valid: optional validation events (numpy array in the layout of
        Dataset.events) for models that stop early. Returns self; fit_seconds is then the library's fit alone
        (what `magpie train` logs as "fit")."""
        lib = _lib.load()
        ds = Dataset.coerce(user_items, show_progress, callback)
        prog = Progress(show_progress, callback)
        with ds.train_set(n_threads=n_threads) as ts:
            if valid is not None:
                valid = np.ascontiguousarray(valid, dtype=_lib.INTERACTION_DTYPE)
                ts.data.valid = events_ptr(valid)
                ts.data.n_valid = len(valid)
            err = new_error()
            with self._lock.write():
                t0 = time.perf_counter()
                rc = lib.mp_model_fit(self._m, ctypes.byref(ts.data), prog.pointer(), err)
                self.fit_seconds = time.perf_counter() - t0
        prog.raise_pending()
        check(rc, err)
        self.dataset = ds
        return self

    @property
    def is_fitted(self):
        return bool(_lib.load().mp_model_is_fitted(self._m))

    @property
    def n_items(self):
        return int(_lib.load().mp_model_n_items(self._m))

    # --- users and their histories ------------------------------------------------------------------------------

    def _users(self, userid, dataset):
        """(array of dense user ids, was_scalar). External (string) ids are looked up in the dataset."""
        scalar = np.ndim(userid) == 0
        ids = [userid] if scalar else list(userid)
        out = np.empty(len(ids), dtype=np.int64)
        for j, u in enumerate(ids):
            if isinstance(u, (str, bytes)):
                if dataset is None:
                    raise ValueError(f"user {u!r} is an external id: pass dataset= (or fit on one) to look it up")
                out[j] = dataset.user_index(u)
            else:
                out[j] = int(u)
        return out, scalar

    def _contexts(self, users, user_items, dataset):
        """An mp_user_ctx array for the users, and what keeps its memory alive."""
        n = len(users)
        ctxs = (_lib.mp_user_ctx * max(1, n))()
        keep = []
        if user_items is not None and not isinstance(user_items, Dataset):
            import scipy.sparse as sp
            if not sp.issparse(user_items):
                user_items = sp.csr_matrix(np.atleast_2d(user_items))
            if user_items.shape[0] != n:
                raise ValueError(f"user_items has {user_items.shape[0]} rows for {n} users: give one row per user "
                                 f"(user_items[userid], as implicit does)")
            ev, off = _history_from_rows(user_items)
            keep.append(ev)
            base = ev.ctypes.data
            for j in range(n):
                ctxs[j].user = int(users[j]) if users[j] >= 0 else _lib.NO_USER
                cnt = int(off[j + 1] - off[j])
                if cnt:
                    ctxs[j].history = ctypes.cast(base + int(off[j]) * ev.itemsize, ctypes.POINTER(_lib.mp_interaction))
                ctxs[j].n_history = cnt
            return ctxs, keep
        ds = user_items if isinstance(user_items, Dataset) else dataset
        if ds is not None:
            keep.append(ds)
            d = ds._ptr.contents
            uptr = ds.user_ptr
            base = ctypes.cast(d.events, ctypes.c_void_p).value
            for j in range(n):
                u = int(users[j])
                ctxs[j].user = u if u >= 0 else _lib.NO_USER
                if 0 <= u < ds.n_users:
                    a, b = int(uptr[u]), int(uptr[u + 1])
                    if b > a:
                        ctxs[j].history = ctypes.cast(base + a * _lib.INTERACTION_DTYPE.itemsize,
                                                      ctypes.POINTER(_lib.mp_interaction))
                        ctxs[j].n_history = b - a
            return ctxs, keep
        for j in range(n):
            ctxs[j].user = int(users[j]) if users[j] >= 0 else _lib.NO_USER
        return ctxs, keep

    # --- reading calls ------------------------------------------------------------------------------------------

    def recommend(self, userid, user_items=None, N=10, filter_already_liked_items=True, filter_items=None,
                  recalculate_user=False, items=None, *, n=None, filter_already_liked=None, dataset=None,
                  n_threads=0, show_progress=False, callback=None):
        """Top-N items for one user or many (batched in one library call on n_threads threads).

        userid: a dense user id (int), an external id (str, looked up in the dataset) or an array of them.
        user_items: the users' interactions, one row per user (implicit's form: user_items[userid]); or a
        Dataset; or None for the histories of the dataset the model was fitted on (or `dataset=`).
        filter_already_liked_items (alias filter_already_liked): leave out items in the user's history.
        filter_items: item ids never to return; items: only return these. In a store's dataset, unavailable
        and unknown items are left out as `magpie recommend` does.
        Returns (ids, scores): int32 / float32 arrays of shape (N,) for one user (fewer when fewer items are
        left) or (len(userid), N) for many, rows padded with id -1 and score NaN. recalculate_user is accepted
        for implicit compatibility: the library folds in a history it has not seen by itself."""
        lib = _lib.load()
        if n is not None:
            N = n
        if filter_already_liked is not None:
            filter_already_liked_items = filter_already_liked
        N = int(N)
        if N < 1:
            raise ValueError("N must be at least 1")
        ds = dataset if dataset is not None else (user_items if isinstance(user_items, Dataset) else self.dataset)
        users, scalar = self._users(userid, ds)
        n_items = self.n_items
        allow = None
        source = user_items if isinstance(user_items, Dataset) else (None if user_items is not None else ds)
        if source is not None and source._from_store:
            allow = source.recommendable()[:n_items].copy()
            if len(allow) < n_items:
                allow = np.concatenate([allow, np.zeros(n_items - len(allow), np.uint8)])
        if filter_items is not None or items is not None:
            if allow is None:
                allow = np.ones(n_items, dtype=np.uint8)
            if items is not None:
                only = np.zeros(n_items, dtype=np.uint8)
                sel = np.asarray(items, dtype=np.int64)
                only[sel[(sel >= 0) & (sel < n_items)]] = 1
                allow &= only
            if filter_items is not None:
                sel = np.asarray(filter_items, dtype=np.int64)
                allow[sel[(sel >= 0) & (sel < n_items)]] = 0
        ctxs, keep = self._contexts(users, user_items, ds)
        k = len(users)
        out_items = np.empty((k, N), dtype=np.uint32)
        out_scores = np.empty((k, N), dtype=np.float32)
        n_out = np.zeros(k, dtype=np.uintp)
        prog = Progress(show_progress, callback)
        err = new_error()
        with self._lock.read():
            rc = lib.mp_model_recommend_many(self._m, ctxs, k, N, 1 if filter_already_liked_items else 0,
                                             ptr(allow, _lib.c_u8) if allow is not None else None, int(n_threads),
                                             prog.pointer(), ptr(out_items, _lib.c_u32),
                                             ptr(out_scores, _lib.c_float), ptr(n_out, _lib.c_size), err)
        del keep
        prog.raise_pending()
        check(rc, err)
        ids = out_items.view(np.int32)  # UINT32_MAX padding reads as -1
        if scalar:
            got = int(n_out[0])
            return ids[0, :got].copy(), out_scores[0, :got].copy()
        return ids, out_scores

    def similar_items(self, itemid, N=10):
        """Items similar to an item (or to each of an array of items): (ids, scores) as recommend. Unlike implicit,
        the item itself is not in its own list."""
        lib = _lib.load()
        scalar = np.ndim(itemid) == 0
        items = np.atleast_1d(np.asarray(itemid, dtype=np.int64))
        N = int(N)
        ids = np.full((len(items), N), -1, dtype=np.int32)
        scores = np.full((len(items), N), np.nan, dtype=np.float32)
        buf_i = np.empty(N, dtype=np.uint32)
        buf_s = np.empty(N, dtype=np.float32)
        got = ctypes.c_size_t()
        counts = []
        with self._lock.read():
            for j, it in enumerate(items):
                err = new_error()
                if it < 0 or it > 0xFFFFFFFF:
                    raise MagpieError(-5, f"model {self.name}: item {it} is unknown to the model")
                check(lib.mp_model_similar(self._m, int(it), N, ptr(buf_i, _lib.c_u32), ptr(buf_s, _lib.c_float),
                                           ctypes.byref(got), err), err)
                ids[j, :got.value] = buf_i[:got.value]
                scores[j, :got.value] = buf_s[:got.value]
                counts.append(got.value)
        if scalar:
            return ids[0, :counts[0]].copy(), scores[0, :counts[0]].copy()
        return ids, scores

    def explain(self, userid, itemid, user_items=None, *, dataset=None):
        """The reason the model gives for recommending itemid to userid ("because you rated ‘Heat (1995)’ 5"), as
        `magpie recommend --explain` prints it. user_items / dataset: as in recommend."""
        lib = _lib.load()
        ds = dataset if dataset is not None else (user_items if isinstance(user_items, Dataset) else self.dataset)
        users, _ = self._users(userid, ds)
        if isinstance(itemid, str):
            if ds is None:
                raise ValueError(f"item {itemid!r} is an external id: pass dataset=")
            itemid = ds.item_index(itemid)
        ctxs, keep = self._contexts(users[:1], user_items, ds)
        buf = ctypes.create_string_buffer(1024)
        err = new_error()
        with self._lock.read():
            rc = lib.mp_model_explain(self._m, ctxs, int(itemid), buf, len(buf), err)
        del keep
        check(rc, err)
        return buf.value.decode("utf-8", "replace")

    def score(self, userid, user_items=None, *, dataset=None):
        """Scores of every item for one user (float32 [n_items], higher is better)."""
        lib = _lib.load()
        ds = dataset if dataset is not None else (user_items if isinstance(user_items, Dataset) else self.dataset)
        users, _ = self._users(userid, ds)
        ctxs, keep = self._contexts(users[:1], user_items, ds)
        out = np.empty(self.n_items, dtype=np.float32)
        err = new_error()
        with self._lock.read():
            rc = lib.mp_model_score_all(self._m, ctxs, ptr(out, _lib.c_float), err)
        del keep
        check(rc, err)
        return out

    @property
    def item_factors(self):
        """The item vectors of a latent-factor model (float32 [n_items, dim], a copy), as its retrieval vectors:
        score = user vector . item vector (models with item biases add a bias column). MagpieError
        MP_EUNSUPPORTED for models without them."""
        lib = _lib.load()
        vecs = ctypes.POINTER(_lib.c_float)()
        n, dim = _lib.c_u32(), _lib.c_u32()
        err = new_error()
        with self._lock.read():
            check(lib.mp_model_item_vectors(self._m, ctypes.byref(vecs), ctypes.byref(n), ctypes.byref(dim), err), err)
            if n.value == 0 or dim.value == 0:
                return np.zeros((n.value, dim.value), dtype=np.float32)
            return np.ctypeslib.as_array(vecs, shape=(n.value, dim.value)).copy()

    # --- files --------------------------------------------------------------------------------------------------

    def save(self, path):
        """Writes the model file (atomically) that `magpie recommend --model` and `magpie serve` load."""
        lib = _lib.load()
        err = new_error()
        with self._lock.read():
            check(lib.mp_model_save(self._m, os.fsencode(path), err), err)

    @classmethod
    def load(cls, path):
        """Loads any model file (written by `magpie train`, the server's retraining or save)."""
        lib = _lib.load()
        err = new_error()
        m = ctypes.c_void_p()
        check(lib.mp_model_load(ctypes.byref(m), os.fsencode(path), err), err)
        return cls._wrap(m)

    def __repr__(self):
        state = f"fitted, {self.n_items} items" if self._m and self.is_fitted else "not fitted"
        params = "".join(f", {k}={v}" for k, v in self.params.items())
        return f"<magpie.Model {self.name}{params} ({state})>"

    def close(self):
        if getattr(self, "_m", None):
            with self._lock.write():
                _lib.load().mp_model_destroy(self._m)
                self._m = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def load(path):
    """magpie.load(path): Model.load."""
    return Model.load(path)
