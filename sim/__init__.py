"""PyBullet: worlds built from the project's URDF, validation, simulated arm and spindle."""

__all__: list[str] = []
