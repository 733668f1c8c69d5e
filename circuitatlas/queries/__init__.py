"""Questions asked of a stored run: trajectories, paths and circuits."""
