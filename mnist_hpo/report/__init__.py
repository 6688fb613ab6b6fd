"""The reproduction report: text tables, figures as files, and the report itself, gathered from the database and
the exports."""
