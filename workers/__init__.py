"""RQ jobs and their schedule. Thin: they load ids and call app services."""
