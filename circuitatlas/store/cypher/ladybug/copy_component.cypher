COPY Component FROM $rows
