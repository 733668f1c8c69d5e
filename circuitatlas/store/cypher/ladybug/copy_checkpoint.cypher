COPY Checkpoint FROM $rows
