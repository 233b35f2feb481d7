"""One module per DVC stage: a thin I/O shell around the pure functions of the package.

A stage runs as a child of ``dvc`` (or of another runner: the KFP launcher, a test) and must not outlive it: this
package's import, the first thing ``python -m lifecycle.stages.<verb>`` does, ties the process to its parent
(:func:`lifecycle.cli.stop_with_parent`), before the stage's slow imports, so a ``kill -9`` of ``dvc`` stops it too.
"""

from lifecycle.cli import stop_with_parent

stop_with_parent()
