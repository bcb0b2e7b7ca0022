"""Detection: decides what is personal data, in free text and in columns.

``Scanner`` finds PII spans in batches of texts; ``classify_columns`` tells what each column
of a table holds; ``ScrubText`` (in ``detect.scrub``) replaces detected spans in free-text
columns with the transform operators.
"""
