"""The training core: a session of models and parts (``session``), randomness per part
(``context``), gradient application (``updates``), the generator's EMA (``ema``), the data of
each step (``data``), and the loop with its callbacks (``loop``, ``callbacks``).

Importing this package does not import TensorFlow.
"""
