"""Finding and loading libmagpie.so, and the ctypes mirror of the C structs the package passes.

The struct layouts follow include/magpie/*.h field for field; tests/test_layout.py compiles a C program that
prints sizeof/offsetof of each and compares them with these, so a change to a header that is not made here fails
the tests instead of corrupting memory.

ctypes releases the GIL around every call into a CDLL, so long library calls (fit, evaluate, batched
recommend) let other Python threads run.
"""

import ctypes
import ctypes.util
import os
import threading

import numpy as np

c_u8, c_u32, c_u64, c_i64, c_float, c_double, c_int, c_size = (
    ctypes.c_uint8, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int64, ctypes.c_float, ctypes.c_double,
    ctypes.c_int, ctypes.c_size_t)
P = ctypes.POINTER
c_char_pp = P(ctypes.c_char_p)

NO_USER = 0xFFFFFFFF  # MP_NO_USER
ERROR_MSG_MAX = 1024  # MP_ERROR_MSG_MAX
EVAL_MAX_K = 8  # MP_EVAL_MAX_K


class mp_error(ctypes.Structure):
    _fields_ = [("code", c_int), ("msg", ctypes.c_char * ERROR_MSG_MAX), ("field", ctypes.c_char * 64)]


class mp_interaction(ctypes.Structure):
    _fields_ = [("user", c_u32), ("item", c_u32), ("ts", c_i64), ("value", c_float), ("type", c_u8),
                ("has_value", c_u8), ("grade", ctypes.c_int16)]


# The same layout as a numpy dtype, so that event arrays are built and read without copying through Python.
INTERACTION_DTYPE = np.dtype([("user", "<u4"), ("item", "<u4"), ("ts", "<i8"), ("value", "<f4"), ("type", "u1"),
                              ("has_value", "u1"), ("grade", "<i2")], align=True)


class mp_csr(ctypes.Structure):
    _fields_ = [("n_rows", c_u32), ("n_cols", c_u32), ("ptr", P(c_u64)), ("idx", P(c_u32)), ("val", P(c_float))]


N_EVENT_TYPES = 9  # MP_EV_NTYPES; checked against the library's own names at load (_check_event_types)


class mp_weighting(ctypes.Structure):
    _fields_ = [("type_weight", c_float * N_EVENT_TYPES), ("half_life_days", c_double), ("now", c_i64),
                ("binary", c_int)]


class mp_train_content(ctypes.Structure):
    _fields_ = [("descriptions", c_char_pp), ("brands", c_char_pp), ("prices", P(c_double)),
                ("embeddings", P(c_float)), ("embedding_dim", c_u32), ("embedding_source", ctypes.c_char_p)]


class mp_train_data(ctypes.Structure):
    _fields_ = [("n_users", c_u32), ("n_items", c_u32), ("events", P(mp_interaction)), ("n_events", c_size),
                ("ui", P(mp_csr)), ("iu", P(mp_csr)), ("weighting", P(mp_weighting)),
                ("item_category", P(c_u32)), ("category_names", c_char_pp), ("n_categories", c_u32),
                ("item_titles", c_char_pp), ("content", P(mp_train_content)), ("now", c_i64),
                ("valid", P(mp_interaction)), ("n_valid", c_size), ("n_threads", c_int)]


class mp_train_set(ctypes.Structure):
    _fields_ = [("data", mp_train_data), ("content", mp_train_content), ("ui", mp_csr), ("iu", mp_csr),
                ("weighting", mp_weighting)]


class mp_user_ctx(ctypes.Structure):
    _fields_ = [("user", c_u32), ("history", P(mp_interaction)), ("n_history", c_size), ("text", ctypes.c_char_p),
                ("text_len", c_size), ("text_embedding", P(c_float)), ("text_embedding_dim", c_u32)]


class mp_dataset(ctypes.Structure):
    _fields_ = [("n_users", c_u32), ("n_items", c_u32), ("events", P(mp_interaction)), ("n_events", c_size),
                ("user_ptr", P(c_u64)), ("user_ext", c_char_pp), ("item_ext", c_char_pp),
                ("item_title", c_char_pp), ("item_description", c_char_pp), ("item_brand", c_char_pp),
                ("item_price", P(c_double)), ("item_category", P(c_u32)), ("category_names", c_char_pp),
                ("n_categories", c_u32), ("item_available", P(c_u8)), ("ts_min", c_i64), ("ts_max", c_i64)]


PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, c_u64, c_u64, ctypes.c_char_p)


class mp_progress(ctypes.Structure):
    _fields_ = [("update", PROGRESS_FN), ("ctx", ctypes.c_void_p)]


class mp_param_info(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("default_value", ctypes.c_char_p), ("help", ctypes.c_char_p),
                ("type", c_int), ("offset", c_size), ("imin", c_u64), ("imax", c_u64), ("lo", c_double),
                ("hi", c_double), ("lo_open", c_int), ("allow_auto", c_int), ("auto_offset", c_size),
                ("choices", c_char_pp), ("n_choices", c_u32), ("alias", ctypes.c_char_p), ("tune", c_int),
                ("tune_lo", c_double), ("tune_hi", c_double), ("tune_choices", ctypes.c_char_p)]


class mp_model_ops_head(ctypes.Structure):
    """The leading members of mp_model_ops (read through the registry's pointers only, never allocated)."""
    _fields_ = [("name", ctypes.c_char_p), ("summary", ctypes.c_char_p), ("file_version", c_u32),
                ("impl_size", c_size), ("params", P(mp_param_info)), ("n_params", c_size)]


class mp_split_opts(ctypes.Structure):
    _fields_ = [("kind", c_int), ("seed", c_u64), ("ratio", c_double), ("share", c_double), ("cutoff", c_i64),
                ("with_valid", c_int), ("min_events", c_u32), ("n_folds", c_u32), ("fold", c_u32)]


class mp_split(ctypes.Structure):
    _fields_ = [("train", P(mp_interaction)), ("valid", P(mp_interaction)), ("test", P(mp_interaction)),
                ("n_train", c_size), ("n_valid", c_size), ("n_test", c_size), ("cold_item", P(c_u8)),
                ("cold_user", P(c_u8)), ("n_users", c_u32), ("n_items", c_u32)]


class mp_eval_opts(ctypes.Structure):
    _fields_ = [("ks", c_u32 * EVAL_MAX_K), ("n_ks", c_size), ("history", c_int), ("sampled_negatives", c_u32),
                ("seed", c_u64), ("cold_threshold", c_u32), ("progress", P(mp_progress)), ("n_threads", c_u32)]


class mp_eval_data(ctypes.Structure):
    _fields_ = [("n_users", c_u32), ("n_items", c_u32), ("history", P(mp_interaction)), ("n_history", c_size),
                ("train", P(mp_interaction)), ("n_train", c_size), ("test", P(mp_interaction)), ("n_test", c_size),
                ("item_category", P(c_u32))]


TOPK_METRICS = ("hr", "precision", "recall", "ndcg", "map", "mrr", "coverage", "novelty", "ild", "gini")


class mp_topk_metrics(ctypes.Structure):
    _fields_ = [(name, c_double) for name in TOPK_METRICS]


class mp_eval_group(ctypes.Structure):
    _fields_ = [("n_users", c_u64), ("at", mp_topk_metrics * EVAL_MAX_K), ("auc", c_double), ("n_ratings", c_u64),
                ("rmse", c_double), ("mae", c_double)]


class mp_eval_result(ctypes.Structure):
    _fields_ = [("ks", c_u32 * EVAL_MAX_K), ("n_ks", c_size), ("overall", mp_eval_group), ("cold", mp_eval_group),
                ("warm", mp_eval_group), ("sampled", c_int), ("sampled_negatives", c_u32), ("history", c_int),
                ("n_items", c_u32), ("n_skipped", c_u64)]


# The structs tests/test_layout.py checks against the C headers: (ctypes class, C type name).
LAYOUT = [(mp_error, "mp_error"), (mp_interaction, "mp_interaction"), (mp_csr, "mp_csr"),
          (mp_weighting, "mp_weighting"), (mp_train_content, "mp_train_content"), (mp_train_data, "mp_train_data"),
          (mp_train_set, "mp_train_set"), (mp_user_ctx, "mp_user_ctx"), (mp_dataset, "mp_dataset"),
          (mp_progress, "mp_progress"), (mp_param_info, "mp_param_info"), (mp_split_opts, "mp_split_opts"),
          (mp_split, "mp_split"), (mp_eval_opts, "mp_eval_opts"), (mp_eval_data, "mp_eval_data"),
          (mp_topk_metrics, "mp_topk_metrics"), (mp_eval_group, "mp_eval_group"),
          (mp_eval_result, "mp_eval_result")]
# mp_model_ops is read through a prefix only: its leading members must sit at the same offsets.
LAYOUT_PREFIX = [(mp_model_ops_head, "mp_model_ops")]

# name: (restype, argtypes). Every call of the package goes through this table.
_PROTOTYPES = {
    "mp_strerror": (ctypes.c_char_p, [c_int]),
    "mp_err_name": (ctypes.c_char_p, [c_int]),
    "mp_event_type_name": (ctypes.c_char_p, [c_int]),
    "mp_event_type_default_weight": (c_float, [c_int]),
    "mp_model_registry": (P(P(mp_model_ops_head)), []),
    "mp_param_describe": (ctypes.c_char_p, [P(mp_param_info), ctypes.c_char_p, c_size]),
    "mp_param_tune_spec": (c_int, [P(mp_param_info), ctypes.c_char_p, c_size]),
    "mp_model_create": (c_int, [P(ctypes.c_void_p), ctypes.c_char_p, P(mp_error)]),
    "mp_model_destroy": (None, [ctypes.c_void_p]),
    "mp_model_ops_of": (P(mp_model_ops_head), [ctypes.c_void_p]),
    "mp_model_set_param": (c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, P(mp_error)]),
    "mp_model_check_params": (c_int, [ctypes.c_void_p, P(mp_error)]),
    "mp_model_fit": (c_int, [ctypes.c_void_p, P(mp_train_data), P(mp_progress), P(mp_error)]),
    "mp_model_is_fitted": (c_int, [ctypes.c_void_p]),
    "mp_model_n_items": (c_u32, [ctypes.c_void_p]),
    "mp_model_score_all": (c_int, [ctypes.c_void_p, P(mp_user_ctx), P(c_float), P(mp_error)]),
    "mp_model_recommend_many": (c_int, [ctypes.c_void_p, P(mp_user_ctx), c_size, c_size, c_int, P(c_u8), c_int,
                                        P(mp_progress), P(c_u32), P(c_float), P(c_size), P(mp_error)]),
    "mp_model_similar": (c_int, [ctypes.c_void_p, c_u32, c_size, P(c_u32), P(c_float), P(c_size), P(mp_error)]),
    "mp_model_explain": (c_int, [ctypes.c_void_p, P(mp_user_ctx), c_u32, ctypes.c_char_p, c_size, P(mp_error)]),
    "mp_model_predict_rating": (c_int, [ctypes.c_void_p, c_u32, c_u32, P(c_double), P(mp_error)]),
    "mp_model_item_vectors": (c_int, [ctypes.c_void_p, P(P(c_float)), P(c_u32), P(c_u32), P(mp_error)]),
    "mp_model_query_vector": (c_int, [ctypes.c_void_p, P(mp_user_ctx), P(c_float), P(c_int), P(mp_error)]),
    "mp_model_save": (c_int, [ctypes.c_void_p, ctypes.c_char_p, P(mp_error)]),
    "mp_model_load": (c_int, [P(ctypes.c_void_p), ctypes.c_char_p, P(mp_error)]),
    "mp_store_open": (c_int, [P(ctypes.c_void_p), ctypes.c_char_p, c_int, P(mp_error)]),
    "mp_store_close": (None, [ctypes.c_void_p]),
    "mp_dataset_load": (c_int, [P(P(mp_dataset)), ctypes.c_void_p, P(mp_progress), P(mp_error)]),
    "mp_dataset_from_interactions": (c_int, [P(P(mp_dataset)), c_u32, c_u32, P(mp_interaction), c_size,
                                             P(mp_error)]),
    "mp_dataset_destroy": (None, [P(mp_dataset)]),
    "mp_weighting_default": (None, [P(mp_weighting)]),
    "mp_weighting_parse": (c_int, [P(mp_weighting), ctypes.c_char_p, P(mp_error)]),
    "mp_train_set_build": (c_int, [P(mp_train_set), P(mp_dataset), P(mp_interaction), c_size, P(mp_weighting),
                                   P(mp_error)]),
    "mp_train_set_free": (None, [P(mp_train_set)]),
    "mp_split_opts_default": (None, [P(mp_split_opts), c_int]),
    "mp_split_kind_parse": (c_int, [ctypes.c_char_p, P(c_int)]),
    "mp_split_make": (c_int, [P(mp_dataset), P(mp_split_opts), P(mp_split), P(mp_error)]),
    "mp_split_free": (None, [P(mp_split)]),
    "mp_split_merge": (c_int, [P(mp_interaction), c_size, P(mp_interaction), c_size, P(P(mp_interaction)),
                               P(c_size), P(mp_error)]),
    "mp_history_mode_parse": (c_int, [ctypes.c_char_p, P(c_int)]),
    "mp_eval_opts_default": (None, [P(mp_eval_opts)]),
    "mp_eval_parse_ks": (c_int, [P(mp_eval_opts), ctypes.c_char_p, P(mp_error)]),
    "mp_evaluate": (c_int, [ctypes.c_void_p, P(mp_eval_data), P(mp_eval_opts), P(mp_eval_result), P(mp_error)]),
}

STORE_READONLY = 1  # MP_STORE_READONLY (checked by tests/test_layout.py)


class LibraryNotFound(ImportError):
    """libmagpie.so could not be found or loaded; the message says where it looked and what to build."""


def _candidates():
    """(path, why) in search order: $MAGPIE_LIB, beside the package, the repository's build directory, the loader."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = os.environ.get("MAGPIE_LIB")
    if env:
        path = os.path.join(env, "libmagpie.so") if os.path.isdir(env) else env
        yield path, "$MAGPIE_LIB"
        return  # an explicit choice is not second-guessed
    yield os.path.join(here, "libmagpie.so"), "beside the package"
    repo = os.path.normpath(os.path.join(here, "..", "..", ".."))
    yield os.path.join(repo, "build", "libmagpie.so"), "the repository's build directory"
    yield ctypes.util.find_library("magpie") or "libmagpie.so", "the system loader path"


_lock = threading.Lock()
_lib = None
_path = None


def _declare(lib):
    for name, (res, args) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def load():
    """The loaded library (loaded once, on first use). Raises LibraryNotFound with what to do."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path, why in _candidates():
            if os.sep in path and not os.path.exists(path):
                tried.append(f"{path} ({why}: no such file)")
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                msg = str(e)
                if "ASan runtime does not come first" in msg or "asan" in msg.lower():
                    raise LibraryNotFound(
                        f"{path} was built with AddressSanitizer and cannot be loaded into a plain python: run "
                        f"python with LD_PRELOAD=\"$(gcc -print-file-name=libasan.so)\" ASAN_OPTIONS=detect_leaks=0 "
                        f"(tests/cli/python_package.sh does), or point MAGPIE_LIB at a release build") from e
                tried.append(f"{path} ({why}: {msg})")
                continue
            try:
                _declare(lib)
            except AttributeError as e:
                raise LibraryNotFound(f"{path} is an older libmagpie without {e}; rebuild it with `make`") from e
            _lib, _path = lib, path
            return lib
        raise LibraryNotFound(
            "libmagpie.so not found. Build it with `make` in the Magpie repository (it writes build/libmagpie.so), "
            "then set MAGPIE_LIB=/path/to/build/libmagpie.so (or install it on the loader path). Tried: "
            + "; ".join(tried))


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def free(pointer):
    """free() for memory the library malloc'ed and handed over (mp_split_merge's output)."""
    _libc.free(ctypes.cast(pointer, ctypes.c_void_p))


def path():
    """The file the library was loaded from."""
    load()
    return _path
