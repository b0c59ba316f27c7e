"""The hooks a gankit plugin can implement (pluggy project name ``gankit``).

A plugin is a module (or object) named by an entry point in the ``gankit`` group::

    [project.entry-points.gankit]
    myplugin = "myplugin.plugin"

and implements hooks by decorating functions with :data:`gankit.hookimpl`.
"""

from __future__ import annotations

import pluggy

PROJECT = "gankit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gankit_register_components(register):
    """Register the components this plugin provides.

    Since: gankit 0.1.0.

    Args:
        register: a callable ``register(component_class, name=None)``. ``component_class``
            subclasses one of the interfaces in :mod:`gankit.interfaces` (its ``kind``
            attribute says which); ``name`` is how recipes refer to it and defaults to the
            class attribute ``name``. Call it once per component.

    Returns:
        Nothing; the return value is ignored.

    Example::

        @gankit.hookimpl
        def gankit_register_components(register):
            register(MyGenerator, name="my_generator")
    """


@hookspec
def gankit_keras_objects():
    """Declare the Keras objects of this plugin's models: custom layers, models,
    initializers, constraints, activations (classes or functions), so that a saved
    ``.keras`` file that uses them loads in any process.

    Since: gankit 0.5.0.

    gankit calls this hook only when it loads a saved model (a run's generator for
    ``gankit sample`` or ``evaluate``, a ``keras_model`` feature extractor, a ``projected``
    backbone, the conformance kit's ``save`` check), after Keras is imported; never when it
    loads the plugins. Import Keras and the module defining the objects inside the hook, so that
    importing the plugin stays free of TensorFlow. gankit passes the objects of every loaded
    plugin to ``keras.saving.load_model`` as ``custom_objects``, under their class (or
    function) name and their Keras registered name (``package>Name`` when registered with
    ``keras.saving.register_keras_serializable``).

    Returns:
        A list (or tuple) of the classes and functions, or a dict ``{name: object}`` for
        objects saved under another name; None declares nothing.

    Example::

        @gankit.hookimpl
        def gankit_keras_objects():
            from my_plugin.layers import AdaIN, PixelNorm

            return [AdaIN, PixelNorm]
    """
