COPY NEXT FROM (LOAD FROM $rows RETURN from_key, to_key)
