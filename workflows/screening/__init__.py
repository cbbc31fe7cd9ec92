"""Screening candidates with a BETE-NET ensemble and active-learning rounds.

- :mod:`.candidates`: reading, checking and de-duplicating candidate structures;
- :mod:`.acquisition`: mean, UCB, probability of improvement, expected improvement;
- :mod:`.jobs`, :mod:`.flows`: chunked prediction jobs and the ranking job (jobflow);
- :mod:`.active_learning`: train → screen → verify → ingest rounds;
- :mod:`.records`: screening, model and round documents in the store.
"""
