"""Training SoundSentry models (needs the ``[train]`` extra: TensorFlow, scikit-learn, librosa).

Importing this package does not import TensorFlow; the pipeline does, when it runs.
"""
