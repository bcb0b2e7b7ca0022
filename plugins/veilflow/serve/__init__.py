"""The scrub API: the pipeline's detection and ``scrub_text`` operators over HTTP.

``veilflow serve`` starts it; ``veilflow api token`` manages the tokens that call it. A
token is scoped to one dataset's free-text column, and a request gets exactly what a run of
that dataset's policy would write in that column: the same tokens, surrogates and
placeholders, under the same data keys. The service runs as the pipeline's login; the text
it is sent is never stored, logged or audited, only counted. See docs/scrub-api.md.
"""
