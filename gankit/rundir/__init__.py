"""What a run leaves on disk: the run directory's paths and small files (``run_dir``), its
lock (``lock``), the loss log (``losses``), the checkpoints (``checkpoints``) and the saved
generators (``generators``). Every file name of a run directory is spelled in this package;
every write goes through :mod:`gankit.util.atomic`. No TensorFlow is imported here.
"""
