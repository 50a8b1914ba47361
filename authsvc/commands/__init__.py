"""One module per command group; each exposes ``register(subparsers)``.

A command module parses arguments and calls the same functions the service uses; it sets
``handler`` on its parser via ``set_defaults(handler=...)``; the handler returns the exit
code. Faults (``AuthsvcError``) are turned into ``authsvc: error: ...`` and exit 2 by cli.
"""

from authsvc.commands import audit, demo, health, keys, natsconfig, policy, serve

# Order here is the order in ``authsvc --help``.
GROUPS = [serve, health, keys, natsconfig, policy, audit, demo]
