"""Stability-index analysis of displacement-hosting locations.

From key-informant survey answers to a composite stability index per location
and round (pillars: safety & security, livelihoods & basic services, social
cohesion), with every stage kept and every step recorded::

    import stability as st
    spec = st.load_spec("data/specs/mali.yaml")
    result = st.compute("data/raw/mali_illustrative", spec)
    result.scores                       # one row per location and round
    result.recompute({"normalise.method": "minmax"})

Importing the package is cheap: the numerical libraries load on first use.
"""

__version__ = "0.1.0"

_LAZY = {
    "compute": ("pipeline", "compute"),
    "prepare": ("pipeline", "prepare"),
    "run": ("pipeline", "run"),
    "Result": ("pipeline", "Result"),
    "STAGES": ("pipeline", "STAGES"),
    "load_spec": ("spec", "load_spec"),
    "spec_from_dict": ("spec", "spec_from_dict"),
    "IndexSpec": ("spec", "IndexSpec"),
    "load_dataset": ("io", "load_dataset"),
    "Dataset": ("io", "Dataset"),
    "validate": ("validate", "validate"),
    "read_coinr": ("coinr", "read_coinr"),
    "write_result": ("export", "write_result"),
    "generate": ("generate", "generate"),
    "read_table": ("io", "read_table"),
    "read_export": ("kobo", "read_export"),
    "read_xlsform": ("xlsform", "read_xlsform"),
    "spec_from_xlsform": ("xlsform", "spec_from_xlsform"),
    "write_kobo_export": ("kobo_export", "write_kobo_export"),
    "derive_weights": ("weights", "derive_for"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stability' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
