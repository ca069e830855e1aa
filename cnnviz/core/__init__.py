"""The ground floor: errors, names made safe, timing, atomic files and output units, the tables
of choices, the cache of data passes, pixel preprocessing and the thin layer under Keras."""
