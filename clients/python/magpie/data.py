"""Datasets: what models are fitted on, from a Magpie store, a DataFrame of events or a scipy.sparse matrix.

A Dataset owns the library's mp_dataset (events with dense ids, sorted by user and time) and builds training input
the way `magpie train` does (mp_train_set_build with the default event-type weights), so a model fitted on a store
from Python is the model `magpie train` writes for that store.
"""

import ctypes
import os

import numpy as np

from . import _lib
from ._util import MagpieError, Progress, c_strings, check, events_ptr, events_view, new_error, ptr


def event_types():
    """The event type names in the order of their numeric codes (include/magpie/records.h), from the library."""
    lib = _lib.load()
    names = []
    for code in range(_lib.N_EVENT_TYPES + 1):
        name = lib.mp_event_type_name(code).decode()
        if name == "?":
            break
        names.append(name)
    return names


def _type_codes(values):
    """Event types (names or codes) as an array of codes; ValueError naming a bad one."""
    names = event_types()
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        bad = (arr < 0) | (arr >= len(names))
        if bad.any():
            raise ValueError(f"event type code {arr[bad][0]} is not one of 0..{len(names) - 1} ({', '.join(names)})")
        return arr.astype(np.uint8)
    lookup = {n: i for i, n in enumerate(names)}
    out = np.empty(len(arr), dtype=np.uint8)
    for i, v in enumerate(arr):
        code = lookup.get(v)
        if code is None:
            raise ValueError(f"event {i}: type {v!r} is not one of {', '.join(names)}")
        out[i] = code
    return out


def _seconds(ts):
    """Timestamps (integers, floats, datetimes or RFC 3339 strings) as int64 epoch seconds."""
    import pandas as pd
    s = pd.Series(ts)
    if s.dtype.kind in "iu":
        return s.to_numpy(dtype=np.int64)
    if s.dtype.kind == "f":
        return np.floor(s.to_numpy()).astype(np.int64)
    t = pd.to_datetime(s, utc=True)
    return (t.astype("int64") // 10**9).to_numpy(dtype=np.int64)


def _csr_parts(m):
    """scipy CSR in the library's types: (indptr uint64, indices uint32, data float32), sorted indices."""
    m = m.tocsr()
    m.sort_indices()
    return (np.ascontiguousarray(m.indptr, dtype=np.uint64), np.ascontiguousarray(m.indices, dtype=np.uint32),
            np.ascontiguousarray(m.data, dtype=np.float32))


class _OwnedCsr:
    """An mp_csr over numpy arrays this object keeps alive."""

    def __init__(self, m):
        self.indptr, self.indices, self.data = _csr_parts(m)
        self.struct = _lib.mp_csr(m.shape[0], m.shape[1], ptr(self.indptr, _lib.c_u64), ptr(self.indices, _lib.c_u32),
                                  ptr(self.data, _lib.c_float))


class TrainSet:
    """Training input (mp_train_data) over some of a dataset's events; freed by close() / with-block. Internal."""

    def __init__(self, ds, events, weighting=None, n_threads=0):
        lib = _lib.load()
        self.dataset = ds
        self.events = events  # keeps the event memory alive
        self.ts = _lib.mp_train_set()
        self._keep = []
        err = new_error()
        w = weighting if weighting is not None else ds.weighting
        check(lib.mp_train_set_build(ctypes.byref(self.ts), ds._ptr, events_ptr(events), len(events),
                                     ctypes.byref(w), err), err)
        d = self.ts.data
        d.n_threads = int(n_threads)
        if ds._values_as_weights:
            # A matrix given by the caller: its values are the interaction weights (as implicit reads them),
            # not the type weight of the events it was turned into.
            import scipy.sparse as sp
            m = sp.csr_matrix((events["value"].astype(np.float64), (events["user"], events["item"])),
                              shape=(ds.n_users, ds.n_items))
            m.sum_duplicates()
            m.data[m.data <= 0] = 0
            m.eliminate_zeros()
            ui, iu = _OwnedCsr(m), _OwnedCsr(m.T)
            self._keep += [ui, iu]
            d.ui = ctypes.pointer(ui.struct)
            d.iu = ctypes.pointer(iu.struct)
        if ds._titles_c is not None:  # the caller's titles (the dataset from arrays has none)
            d.item_titles = ds._titles_c
        if ds._categories_c is not None:
            d.item_category = ptr(ds._category_idx, _lib.c_u32)
            d.category_names = ds._categories_c
            d.n_categories = len(ds._category_names)

    @property
    def data(self):
        return self.ts.data

    def user_items(self):
        import scipy.sparse as sp
        d = self.ts.data
        ui = d.ui.contents
        nnz = int(ui.ptr[ui.n_rows]) if ui.ptr else 0
        if nnz == 0:
            return sp.csr_matrix((ui.n_rows, ui.n_cols), dtype=np.float32)
        indptr = np.ctypeslib.as_array(ui.ptr, shape=(ui.n_rows + 1,)).astype(np.int64)
        indices = np.ctypeslib.as_array(ui.idx, shape=(nnz,)).astype(np.int32)
        data = np.ctypeslib.as_array(ui.val, shape=(nnz,)).copy()
        return sp.csr_matrix((data, indices, indptr), shape=(ui.n_rows, ui.n_cols))

    def close(self):
        if self.ts is not None:
            _lib.load().mp_train_set_free(ctypes.byref(self.ts))
            self.ts = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Dataset:
    """Events with dense user and item ids (0 .. n_users-1, 0 .. n_items-1), as models see them.

    Build one with Dataset.from_store(path), Dataset.from_events(dataframe) or Dataset.from_csr(user_items).
    Attributes: n_users, n_items, events (read-only numpy array with fields user, item, ts, value, type,
    has_value, grade; sorted by user and time), user_ids / item_ids (external ids, index = dense id),
    item_titles, user_items (the weighted user x item scipy.sparse.csr_matrix the models are fitted on).
    """

    def __init__(self, ds_ptr, source, user_ids=None, item_ids=None, titles=None, categories=None,
                 values_as_weights=False, from_store=False):
        self._ptr = ds_ptr
        self.source = source
        self._values_as_weights = values_as_weights
        self._from_store = from_store
        d = ds_ptr.contents
        self.n_users, self.n_items = int(d.n_users), int(d.n_items)
        self._user_ids = user_ids
        self._item_ids = item_ids
        self.weighting = _lib.mp_weighting()
        _lib.load().mp_weighting_default(ctypes.byref(self.weighting))
        self._titles_c = None
        self._titles = None
        if titles is not None:
            titles = [None if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in titles]
            if len(titles) != self.n_items:
                raise ValueError(f"{len(titles)} item titles for {self.n_items} items")
            self._titles = titles
            self._titles_c = (ctypes.c_char_p * max(1, self.n_items))(
                *[None if t is None else t.encode() for t in titles])
        self._categories_c = None
        if categories is not None:
            cats = ["(none)"] + sorted({str(c) for c in categories if c is not None and c == c} - {"(none)"})
            index = {c: i for i, c in enumerate(cats)}
            self._category_names = cats
            self._category_idx = np.array([0 if c is None or c != c else index[str(c)] for c in categories],
                                          dtype=np.uint32)
            if len(self._category_idx) != self.n_items:
                raise ValueError(f"{len(self._category_idx)} item categories for {self.n_items} items")
            self._categories_c = (ctypes.c_char_p * len(cats))(*[c.encode() for c in cats])
        self._user_items = None

    # --- constructors -------------------------------------------------------------------------------------------

    @classmethod
    def from_store(cls, path, show_progress=False, callback=None):
        """Every event of a Magpie store (what `magpie train --db path` trains on), with its ids and titles."""
        lib = _lib.load()
        if not os.path.exists(path):
            raise MagpieError(-5, f"no store at {path} (import data first with `magpie import`)")  # MP_ENOTFOUND
        err = new_error()
        store = ctypes.c_void_p()
        check(lib.mp_store_open(ctypes.byref(store), os.fsencode(path), _lib.STORE_READONLY, err), err)
        ds = ctypes.POINTER(_lib.mp_dataset)()
        prog = Progress(show_progress, callback)
        try:
            rc = lib.mp_dataset_load(ctypes.byref(ds), store, prog.pointer(), err)
        finally:
            lib.mp_store_close(store)
        prog.raise_pending()
        check(rc, err)
        return cls(ds, f"store {path}", from_store=True)

    @classmethod
    def from_events(cls, events, user_col="user", item_col="item", type_col="type", ts_col="ts", value_col="value",
                    default_type="purchase", item_titles=None, item_categories=None):
        """Events from a pandas DataFrame with columns user, item and optionally type (a name such as "purchase"
        or its code; default `default_type`), ts (epoch seconds, datetimes or RFC 3339; default 0) and value (a
        rating). User and item ids may be anything hashable; they get dense ids in order of first appearance
        (Dataset.user_ids / item_ids map back). item_titles / item_categories: a mapping or Series from item id
        to title / category, used in explanations ("because you rated ‘Heat (1995)’ 5") and category metrics."""
        import pandas as pd
        if not isinstance(events, pd.DataFrame):
            events = pd.DataFrame(events)
        for col in (user_col, item_col):
            if col not in events.columns:
                raise ValueError(f"the events have no column {col!r} (columns: {', '.join(map(str, events.columns))})")
        users, user_ids = pd.factorize(events[user_col], sort=False)
        items, item_ids = pd.factorize(events[item_col], sort=False)
        n = len(events)
        ev = np.zeros(n, dtype=_lib.INTERACTION_DTYPE)
        ev["user"] = users
        ev["item"] = items
        ev["type"] = _type_codes(events[type_col].to_numpy()) if type_col in events.columns else \
            _type_codes([default_type] * n) if n else 0
        if ts_col in events.columns:
            ev["ts"] = _seconds(events[ts_col])
        if value_col in events.columns:
            v = pd.to_numeric(events[value_col], errors="coerce").to_numpy(dtype=np.float64)
            ev["has_value"] = ~np.isnan(v)
            ev["value"] = np.where(np.isnan(v), 0, v)
        item_ids = np.asarray(item_ids, dtype=object)
        titles = cats = None
        if item_titles is not None:
            lookup = dict(item_titles.items()) if hasattr(item_titles, "items") else dict(item_titles)
            titles = [lookup.get(i) for i in item_ids]
        if item_categories is not None:
            lookup = dict(item_categories.items()) if hasattr(item_categories, "items") else dict(item_categories)
            cats = [lookup.get(i) for i in item_ids]
        return cls._from_array(ev, len(user_ids), len(item_ids), "events",
                               user_ids=np.asarray(user_ids, dtype=object), item_ids=item_ids, titles=titles,
                               categories=cats)

    @classmethod
    def from_csr(cls, user_items, event_type="rating", item_titles=None):
        """A scipy.sparse user x item matrix (as implicit takes): each stored value > 0 becomes one event of
        `event_type` carrying the value, and the factor models (als, bpr, hybrid) are fitted on the values
        themselves as interaction weights, as implicit does; item-to-item models (itemknn, ease) read them
        through their `input` parameter (binary, weighted by type, or rating = the value), mf as ratings.
        There are no timestamps (every event has ts 0), so time decay and sequence models see no order."""
        import scipy.sparse as sp
        if not sp.issparse(user_items):
            user_items = sp.csr_matrix(user_items)
        coo = user_items.tocoo()
        keep = coo.data > 0
        n_users, n_items = user_items.shape
        ev = np.zeros(int(keep.sum()), dtype=_lib.INTERACTION_DTYPE)
        ev["user"] = coo.row[keep]
        ev["item"] = coo.col[keep]
        ev["value"] = coo.data[keep]
        ev["has_value"] = 1
        ev["type"] = _type_codes([event_type])[0]
        return cls._from_array(ev, n_users, n_items, "matrix", titles=item_titles, values_as_weights=True)

    @classmethod
    def _from_array(cls, ev, n_users, n_items, source, **kw):
        lib = _lib.load()
        err = new_error()
        ds = ctypes.POINTER(_lib.mp_dataset)()
        ev = np.ascontiguousarray(ev)
        check(lib.mp_dataset_from_interactions(ctypes.byref(ds), n_users, n_items, events_ptr(ev), len(ev), err), err)
        return cls(ds, source, **kw)

    @classmethod
    def coerce(cls, data, show_progress=False, callback=None):
        """A Dataset from whatever fit / evaluate accept: a Dataset, a store path, a DataFrame or a sparse matrix."""
        if isinstance(data, Dataset):
            return data
        if isinstance(data, (str, os.PathLike)):
            return cls.from_store(os.fspath(data), show_progress=show_progress, callback=callback)
        import scipy.sparse as sp
        if sp.issparse(data):
            return cls.from_csr(data)
        import pandas as pd
        if isinstance(data, pd.DataFrame):
            return cls.from_events(data)
        raise TypeError(f"expected a Dataset, a store path, a pandas DataFrame of events or a scipy.sparse "
                        f"user x item matrix, got {type(data).__name__}")

    # --- contents -----------------------------------------------------------------------------------------------

    @property
    def n_events(self):
        return int(self._ptr.contents.n_events)

    @property
    def events(self):
        d = self._ptr.contents
        return events_view(d.events, int(d.n_events))

    @property
    def user_ptr(self):
        d = self._ptr.contents
        return np.ctypeslib.as_array(d.user_ptr, shape=(self.n_users + 1,)) if self.n_users else np.zeros(1, np.uint64)

    def history(self, user):
        """The events of one user (dense id), oldest first."""
        p = self.user_ptr
        if not 0 <= user < self.n_users:
            return np.zeros(0, dtype=_lib.INTERACTION_DTYPE)
        return self.events[int(p[user]):int(p[user + 1])]

    @property
    def user_ids(self):
        if self._user_ids is None:
            d = self._ptr.contents
            self._user_ids = np.array(c_strings(d.user_ext, self.n_users), dtype=object)
        return self._user_ids

    @property
    def item_ids(self):
        if self._item_ids is None:
            d = self._ptr.contents
            self._item_ids = np.array(c_strings(d.item_ext, self.n_items), dtype=object)
        return self._item_ids

    @property
    def item_titles(self):
        if self._titles is None:
            d = self._ptr.contents
            self._titles = c_strings(d.item_title, self.n_items)
        return self._titles

    def recommendable(self):
        """uint8 mask [n_items]: items `magpie recommend` may return (known and available in a store; all
        items otherwise)."""
        if not self._from_store:
            return np.ones(self.n_items, dtype=np.uint8)
        d = self._ptr.contents
        avail = np.ctypeslib.as_array(d.item_available, shape=(self.n_items,)).copy() if self.n_items else \
            np.zeros(0, np.uint8)
        known = np.array([x is not None for x in self.item_ids], dtype=np.uint8)
        return avail & known

    def user_index(self, ext):
        """Dense id of an external user id; KeyError when unknown."""
        return self._index("_user_index", self.user_ids, ext, "user")

    def item_index(self, ext):
        return self._index("_item_index", self.item_ids, ext, "item")

    def _index(self, attr, ids, ext, what):
        idx = getattr(self, attr, None)
        if idx is None:
            idx = {x: i for i, x in enumerate(ids) if x is not None}
            setattr(self, attr, idx)
        if ext not in idx:
            raise KeyError(f"unknown {what} {ext!r} in {self.source}")
        return idx[ext]

    @property
    def user_items(self):
        """The weighted user x item matrix (float32 CSR) models are fitted on."""
        if self._user_items is None:
            with TrainSet(self, self.events) as ts:
                self._user_items = ts.user_items()
        return self._user_items

    def train_set(self, events=None, n_threads=0):
        return TrainSet(self, self.events if events is None else events, n_threads=n_threads)

    def __repr__(self):
        return f"<magpie.Dataset {self.source}: {self.n_users} users, {self.n_items} items, {self.n_events} events>"

    def close(self):
        if self._ptr:
            _lib.load().mp_dataset_destroy(self._ptr)
            self._ptr = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
