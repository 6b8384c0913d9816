"""The run of the whole job: dbt builds, the model lifecycle, `segmart run`'s steps and what a
run did without."""
