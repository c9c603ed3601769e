"""Entry module the Cog runtime loads instead of the user's ``file.py`` (copied into staging).

It loads the user's module exactly as Cog would (same module name, from the model
directory) and re-exports the predictor. When the predictor is a class with ``setup()``,
a thin subclass records what ``setup()`` prints, plus the traceback if it raises, in the
file named by ``REPLICATE_COG_SETUP_LOG``. The Cog 0.23 runtime can drop those lines when
setup fails (its worker exits before forwarding them); this file is how the local server
still reports them. Nothing else changes: ``run``/``predict`` are inherited untouched.

Placeholders ``@@FILE@@`` and ``@@NAME@@`` are filled in by ``stage.py``.
This file must not import anything from ``replicate``.
"""

import functools
import importlib.util
import inspect
import os
import sys
import traceback

_FILE = "@@FILE@@"
_NAME = "@@NAME@@"

_here = os.path.dirname(os.path.abspath(__file__))
_module_name = os.path.basename(_FILE)[:-3] if _FILE.endswith(".py") else os.path.basename(_FILE)
_spec = importlib.util.spec_from_file_location(_module_name, os.path.join(_here, _FILE))
if _spec is None or _spec.loader is None:
    raise ImportError(f"cannot load {_FILE}")
_module = importlib.util.module_from_spec(_spec)
sys.modules[_module_name] = _module
_spec.loader.exec_module(_module)
_target = getattr(_module, _NAME)


class _Tee:
    def __init__(self, inner, log):
        self._inner = inner
        self._log = log

    def write(self, s):
        try:
            self._log.write(s)
            self._log.flush()
        except Exception:
            pass
        return self._inner.write(s)

    def flush(self):
        self._inner.flush()

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _recording(log_path):
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in _stop
    saved = (sys.stdout, sys.stderr)
    sys.stdout, sys.stderr = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
    return log, saved


def _stop(log, saved, failed):
    sys.stdout, sys.stderr = saved
    if failed:
        exc_type, exc, tb = sys.exc_info()
        # Skip this module's own frame: the traceback starts in the user's setup().
        log.write("".join(traceback.format_exception(exc_type, exc, tb.tb_next if tb else tb)))
    log.close()


def _wrap_setup(original):
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def async_setup(self, *args, **kwargs):
            path = os.environ.get("REPLICATE_COG_SETUP_LOG")
            if not path:
                return await original(self, *args, **kwargs)
            log, saved = _recording(path)
            try:
                result = await original(self, *args, **kwargs)
            except BaseException:
                _stop(log, saved, True)
                raise
            _stop(log, saved, False)
            return result

        return async_setup

    @functools.wraps(original)
    def sync_setup(self, *args, **kwargs):
        path = os.environ.get("REPLICATE_COG_SETUP_LOG")
        if not path:
            return original(self, *args, **kwargs)
        log, saved = _recording(path)
        try:
            result = original(self, *args, **kwargs)
        except BaseException:
            _stop(log, saved, True)
            raise
        _stop(log, saved, False)
        return result

    return sync_setup


if inspect.isclass(_target) and callable(getattr(_target, "setup", None)):
    _original_setup = getattr(_target, "setup")  # noqa: B009
    _wrapped = type(
        _target.__name__,
        (_target,),
        {
            "setup": _wrap_setup(_original_setup),
            "__module__": _target.__module__,
            "__qualname__": _target.__qualname__,
            "__doc__": _target.__doc__,
        },
    )
    globals()[_NAME] = _wrapped
else:
    globals()[_NAME] = _target
