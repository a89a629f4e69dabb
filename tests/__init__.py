"""SoundSentry test suite."""
