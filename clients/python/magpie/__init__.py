"""Magpie from Python: the library (libmagpie.so) through ctypes, with numpy / scipy / pandas data.

    import magpie
    ds = magpie.Dataset.from_store("shop.db")          # or Dataset.from_events(df), Dataset.from_csr(user_items)
    model = magpie.Model("als", factors=64).fit(ds)
    ids, scores = model.recommend(0, N=10)              # or model.recommend(userid, user_items[userid], N=10)
    print(model.explain(0, ids[0]))
    model.save("als.mpm")                               # loads in `magpie recommend` and `magpie serve`
    print(magpie.evaluate("ease", ds, protocol="loo"))  # a pandas DataFrame

The library is found through $MAGPIE_LIB, then beside this package, then the repository's build/ directory,
then the system loader path (see magpie._lib). See clients/python/README.md.
"""

from ._lib import LibraryNotFound
from ._util import MagpieError
from .data import Dataset, event_types
from .evaluate import evaluate
from .model import Model, ModelInfo, ParamInfo, load, models


def library_path():
    """The libmagpie.so this process loaded."""
    from . import _lib
    return _lib.path()


__all__ = ["Dataset", "LibraryNotFound", "MagpieError", "Model", "ModelInfo", "ParamInfo", "evaluate",
           "event_types", "library_path", "load", "models"]
__version__ = "0.1.0"
