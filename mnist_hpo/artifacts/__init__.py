"""What a finished study leaves behind: its chosen trial retrained and exported (export, retrain), the files an export
holds (folders, export_figures), checking them (verify) and re-running a stored trial (rerun)."""
