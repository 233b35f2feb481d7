"""lifecycle: a declarative DVC pipeline that carries a tabular dataset through the ML lifecycle."""

__version__ = "0.1.0"
