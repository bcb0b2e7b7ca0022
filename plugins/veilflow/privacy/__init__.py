"""Privacy releases beyond masking: re-identification risk watched from run to run (and,
as they land, differentially private releases and the utility report). Sits above the gate
(``validate``) and below ``pipeline``, whose stages call it through small hooks."""
