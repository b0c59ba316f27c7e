"""``gankit new-plugin NAME``: a working plugin skeleton (:mod:`gankit.plugin.scaffold`)."""

from __future__ import annotations


def add_parser(sub) -> None:
    new_plugin = sub.add_parser("new-plugin", help="write a working plugin skeleton to start from")
    new_plugin.add_argument("name", help="the plugin's name, e.g. 'myplugin' (lowercase letters, "
                                         "digits, '_' or '-'); recipes write 'myplugin:NAME'")
    new_plugin.add_argument("--dir", default=".",
                            help="where to create the gankit-NAME folder (default: here)")
    new_plugin.set_defaults(func=command)


def command(args) -> int:
    from gankit.plugin.scaffold import write_plugin

    folder = write_plugin(args.name, args.dir)
    print(f"Created {folder}. Next:\n  pip install -e {folder}\n  pytest {folder}\n"
          f"  gankit run {folder / 'recipes' / 'example.yaml'} --set dataset.path=IMAGE_FOLDER")
    return 0
