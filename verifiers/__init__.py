"""Step and answer checkers for model-written (untrusted) reasoning text."""
