// The tables of the database (an empty database is a new store).
CALL show_tables()
RETURN name
