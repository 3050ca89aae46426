"""Runs on disk and in their process: a job's and a sweep's directories and the record a job leaves (`layout`),
the names and path keys of the command line (`names`), the experiment a directory holds and its continuation
(`continuation`), a sweep's planned and finished jobs (`sweep`, `plan`), the job's process (`process`: lock,
SIGTERM, threads, DDP) and how a failed job ends (`failures`). It never imports the model."""
