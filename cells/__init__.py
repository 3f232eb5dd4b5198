"""The cell: cell files, tasks, controller, ZeroMQ, records and the command line."""

__all__: list[str] = []
