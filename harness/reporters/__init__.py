"""Report formats.  Each module registers itself through the ``register_reporters`` hook."""
