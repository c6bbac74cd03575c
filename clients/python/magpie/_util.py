"""Errors, progress reporting and small conversions shared by the package's modules."""

import ctypes
import sys

import numpy as np

from . import _lib


class MagpieError(Exception):
    """An error the library reported. `code` is the MP_E* number (negative, as in include/magpie/error.h), `name`
    its name ("MP_EINVAL"), `message` the library's message (mp_error.msg) and `field` the input field it is about
    ("" when none). Branch on `code` or `name`, never on the message text."""

    def __init__(self, code, message, field=""):
        lib = _lib.load()
        self.code = int(code)
        self.name = lib.mp_err_name(self.code).decode()
        self.message = message or lib.mp_strerror(self.code).decode()
        self.field = field
        super().__init__(f"{self.name}: {self.message}")


def check(rc, err=None):
    """Raises MagpieError for a non-zero return code, with the message from `err` (an mp_error) when given."""
    if rc:
        msg = err.msg.decode("utf-8", "replace") if err is not None else ""
        field = err.field.decode("utf-8", "replace") if err is not None else ""
        raise MagpieError(rc, msg, field)


def new_error():
    return _lib.mp_error()


class Progress:
    """The mp_progress handed to a long call: forwards each report to `callback(stage, done, total, unit)` and,
    with show=True, draws a tqdm bar per stage when tqdm is importable (else shows nothing). The library may call
    it from a worker thread; ctypes takes the GIL for the callback. An exception raised by the callback cannot stop
    the C call: it is kept and raised when the call returns (raise_pending)."""

    def __init__(self, show=False, callback=None):
        self.callback = callback
        self.pending = None
        self._bar = None
        self._stage = None
        self._tqdm = None
        if show:
            try:
                from tqdm import tqdm
                self._tqdm = tqdm
            except ImportError:
                self._tqdm = None
        self._fn = _lib.PROGRESS_FN(self._update)  # kept alive as long as the struct
        self.struct = _lib.mp_progress(self._fn, None)

    @property
    def active(self):
        return self.callback is not None or self._tqdm is not None

    def pointer(self):
        """What to pass as `const mp_progress *`: NULL when nothing listens (the library then skips reporting)."""
        return ctypes.pointer(self.struct) if self.active else None

    def _update(self, _ctx, stage, done, total, unit):
        if self.pending is not None:
            return
        try:
            stage = stage.decode() if stage else ""
            unit = unit.decode() if unit else None
            if self.callback is not None:
                self.callback(stage, int(done), int(total), unit)
            if self._tqdm is not None:
                if stage != self._stage:
                    self.close()
                    self._stage = stage
                    self._bar = self._tqdm(total=total or None, desc=stage, unit=unit or "it", leave=False,
                                           file=sys.stderr)
                if self._bar is not None:
                    self._bar.n = done
                    self._bar.refresh()
                    if total and done >= total:
                        self.close()
        except BaseException as e:  # noqa: B902 - kept and re-raised in the caller's thread
            self.pending = e

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._stage = None

    def raise_pending(self):
        self.close()
        if self.pending is not None:
            e, self.pending = self.pending, None
            raise e


def ptr(arr, ctype):
    """A ctypes pointer to a contiguous numpy array's data (the caller keeps `arr` alive)."""
    return arr.ctypes.data_as(ctypes.POINTER(ctype))


def events_ptr(arr):
    return arr.ctypes.data_as(ctypes.POINTER(_lib.mp_interaction)) if len(arr) else None


def events_view(pointer, n):
    """A read-only numpy view (INTERACTION_DTYPE) of n events at a C pointer; owner keeps the memory alive."""
    if not n or not pointer:
        return np.zeros(0, dtype=_lib.INTERACTION_DTYPE)
    addr = ctypes.cast(pointer, ctypes.c_void_p).value
    buf = (ctypes.c_char * (n * _lib.INTERACTION_DTYPE.itemsize)).from_address(addr)
    a = np.frombuffer(buf, dtype=_lib.INTERACTION_DTYPE)
    a.flags.writeable = False
    return a


def c_strings(pp, n):
    """A list of n Python strings (None for NULL entries) from a C `char **`."""
    if not pp:
        return [None] * n
    return [None if pp[i] is None else pp[i].decode("utf-8", "replace") for i in range(n)]


class RWLock:
    """Readers-writer lock matching the model's thread rules (model.h, "Threads"): reading calls may overlap,
    fit / load / destroy need the model alone."""

    def __init__(self):
        import threading
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def read(self):
        return _Held(self, False)

    def write(self):
        return _Held(self, True)


class _Held:
    def __init__(self, lock, write):
        self.lock, self.write = lock, write

    def __enter__(self):
        c = self.lock._cond
        with c:
            if self.write:
                while self.lock._writer or self.lock._readers:
                    c.wait()
                self.lock._writer = True
            else:
                while self.lock._writer:
                    c.wait()
                self.lock._readers += 1

    def __exit__(self, *exc):
        c = self.lock._cond
        with c:
            if self.write:
                self.lock._writer = False
            else:
                self.lock._readers -= 1
            c.notify_all()
