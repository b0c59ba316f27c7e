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
