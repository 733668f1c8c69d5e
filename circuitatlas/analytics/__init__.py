"""Complex-network analytics of a stored run: centralities, roles and training phases."""
