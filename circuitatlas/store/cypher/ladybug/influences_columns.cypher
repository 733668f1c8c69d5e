// The properties of INFLUENCES (a store written before the task-metric scores lacks them).
CALL table_info('INFLUENCES')
RETURN name
