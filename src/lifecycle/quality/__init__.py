"""The data quality gate: a reviewable YAML data contract, checked with Great Expectations, bad rows quarantined.

The contract (``data/contracts/<dataset>.yaml``, one per dataset, reviewed in pull requests) declares each
column's type, nullability, numeric range, value set or datetime window, the target's classes, and what to do
with duplicated rows. The package, one concern per module:

* :mod:`~lifecycle.quality.contract`: parse and load the contract (:func:`load_contract`, :class:`Contract`);
* :mod:`~lifecycle.quality.rules`: its row-level rules and THE one evaluator of them (:func:`split_rows`:
  vectorized pandas masks, a reason per quarantined row, one row-hashing scheme for repeated rows within a frame
  and, through :class:`SeenRows`, across the chunks and files of a batch);
* :mod:`~lifecycle.quality.gx_suite`: the Great Expectations suites built from the same rules, run in an
  ephemeral context, their results as deterministic JSON (:func:`run_suite`, :func:`clean_json`);
* :mod:`~lifecycle.quality.gx`: the verdict on those results (:func:`judge`, :func:`validate_frame`,
  :class:`QualityResult`);
* :mod:`~lifecycle.quality.report`: reports/validation.json and reports/validation.md;
* :mod:`~lifecycle.quality.suggest`: a starter contract from the data (``python -m lifecycle.quality suggest``);
* :mod:`~lifecycle.quality.gx_fingerprint`, :mod:`~lifecycle.quality.lazy_imports`,
  :mod:`~lifecycle.quality.gx_import`: one module per workaround for Great Expectations' cost, each pinned
  and tested against the library version in pyproject.toml.

Row-level rules (a value out of range, an unknown category, a timestamp outside the window, a null in a
non-nullable column, a repeated row) quarantine the rows that break them, each with a readable ``reason``; the
clean rows go on as long as the quarantined fraction is at most ``validate.max_bad_row_fraction``. Table-level
rules (a missing or unexpected column, a wrong dtype, too few or too many rows, too many nulls in a column, a
target class gone or below ``validate.min_class_rows``) fail the whole batch.

Import the modules themselves (``from lifecycle.quality.contract import load_contract``): this file imports
nothing, so a user of the contract alone does not depend on (and is not rerun by DVC for) the GE modules.
"""
