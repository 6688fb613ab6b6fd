"""Stage 6, artifacts: retrain-and-export, the files an export holds, checking them (verify) and re-running a stored trial (rerun)."""
