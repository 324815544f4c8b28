"""Text preprocessing: raw labelled text -> vectorized, chunked datasets.

Data flow, one module each: :mod:`ooc.text.sources` streams rows of raw
text and labels out of CSV/TSV, JSON Lines and folder-per-class inputs;
:mod:`ooc.text.tokenize` turns chunks of texts into token ids;
:mod:`ooc.text.ngram_vectorizer` (TF-IDF n-grams + top-k by ANOVA F) and
:mod:`ooc.text.sequence_vectorizer` (Keras-style padded token sequences)
are fitted on streamed chunks; :mod:`ooc.text.spill` keeps tokenised rows on
disk between passes and shuffles them; :mod:`ooc.preprocess` drives the
passes in worker processes and writes the dataset.
"""

from __future__ import annotations
