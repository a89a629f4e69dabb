"""SoundSentry's benchmarks against the seed's inference path (``python -m benchmarks --help``)."""
