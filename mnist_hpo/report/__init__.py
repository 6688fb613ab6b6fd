"""Stage 8, the report: text tables, figures as files, and the reproduction report gathered from the database and the exports."""
