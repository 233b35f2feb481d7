"""One module per DVC stage: a thin I/O shell around the pure functions of the package."""
